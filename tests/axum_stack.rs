//! The Foresight stack inside an axum gateway, over real loopback sockets:
//! `edge → ShardLayer → Pool<Forward>` nested under `/api` or mounted as
//! the router's fallback, in front of three axum instances, keyed by the JWT
//! subject or else the `sid` cookie.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use foresight::core::INSTANCE_HEADER;
use foresight::forward::{Forward, Upstream, http_client};
use foresight::prelude::*;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderName, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use support::{NamedServer, SEEN_PATH, demo_token, owner_of, topology_of};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

/// Where the gateway app mounts the stack.
#[derive(Clone, Copy)]
enum Mount {
    /// `nest_service("/api", stack)`: the prefix is stripped.
    Nested,
    /// `fallback_service(stack)`: unmatched paths go through unchanged.
    Fallback,
}

async fn start_gateway(topology: Topology, mount: Mount) -> SocketAddr {
    let upstream = Upstream::http();
    let pool = Pool::new(topology.clone(), move |instance| {
        Forward::<Body>::new(&upstream, instance)
    })
    .with_instance_header(true);
    let stack = ServiceBuilder::new()
        .layer(foresight::edge())
        .layer(ShardLayer::new(
            topology,
            JwtSubjectKey::new().or(CookieKey::new("sid")),
        ))
        .service(pool);
    let app = Router::new().route("/healthz", get(|| async { "gateway ok" }));
    let app = match mount {
        Mount::Nested => app.nest_service("/api", stack),
        Mount::Fallback => app.fallback_service(stack),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

async fn start_instances() -> Vec<NamedServer> {
    let mut servers = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        servers.push(NamedServer::start_axum(name).await);
    }
    servers
}

struct Reply {
    status: StatusCode,
    /// What the pool says (`x-foresight-instance`).
    served_by: Option<String>,
    /// The path the instance was asked for.
    seen_path: Option<String>,
    body: String,
}

async fn get_via(
    client: &Client<HttpConnector, Empty<Bytes>>,
    gateway: SocketAddr,
    path: &str,
    headers: &[(HeaderName, String)],
) -> Reply {
    let mut request = http::Request::get(format!("http://{gateway}{path}"));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = client
        .request(request.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let served_by = header(INSTANCE_HEADER.as_str());
    let seen_path = header(SEEN_PATH);
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        served_by,
        seen_path,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn bearer(sub: &str) -> (HeaderName, String) {
    (AUTHORIZATION, format!("Bearer {}", demo_token(sub)))
}

fn sid(value: &str) -> (HeaderName, String) {
    (COOKIE, format!("theme=dark; sid={value}"))
}

#[tokio::test]
async fn subjects_and_cookies_stick_to_their_rendezvous_owner() {
    let servers = start_instances().await;
    let topology = topology_of(&servers);
    let gateway = start_gateway(topology.clone(), Mount::Nested).await;
    let client = http_client::<Empty<Bytes>>();

    let mut owned = HashMap::<String, usize>::new();
    for i in 0..60 {
        let user = format!("user-{i}");
        let owner = owner_of(&topology, &ClientKey::from(user.as_str()));
        *owned.entry(owner.clone()).or_default() += 1;
        // Sticky: every request with the same subject reaches the owner, and
        // the instance's own answer agrees with the pool's record.
        for _ in 0..3 {
            let reply = get_via(&client, gateway, "/api/whoami", &[bearer(&user)]).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            assert_eq!(reply.body, owner, "{user}");
            assert_eq!(reply.served_by.as_deref(), Some(owner.as_str()));
            // `nest_service` strips the prefix before the stack sees it.
            assert_eq!(reply.seen_path.as_deref(), Some("/whoami"));
        }
        // The cookie fallback uses the same key space: a browser whose
        // session cookie equals the subject lands on the same instance.
        let reply = get_via(&client, gateway, "/api/whoami", &[sid(&user)]).await;
        assert_eq!(reply.body, owner, "{user} by cookie");
    }
    assert_eq!(owned.len(), 3, "every instance owns some users: {owned:?}");
}

#[tokio::test]
async fn the_subject_wins_over_the_cookie() {
    let servers = start_instances().await;
    let topology = topology_of(&servers);
    let gateway = start_gateway(topology.clone(), Mount::Nested).await;
    let client = http_client::<Empty<Bytes>>();

    let owner = |key: &str| owner_of(&topology, &ClientKey::from(key));
    let (subject, cookie) = (0..)
        .map(|i| (format!("sub-{i}"), format!("cookie-{i}")))
        .find(|(s, c)| owner(s) != owner(c))
        .unwrap();
    let reply = get_via(
        &client,
        gateway,
        "/api/whoami",
        &[bearer(&subject), sid(&cookie)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, owner(&subject));
}

#[tokio::test]
async fn as_a_fallback_the_stack_forwards_paths_unchanged() {
    let servers = start_instances().await;
    let topology = topology_of(&servers);
    let gateway = start_gateway(topology.clone(), Mount::Fallback).await;
    let client = http_client::<Empty<Bytes>>();

    let reply = get_via(&client, gateway, "/api/orders/7?full=1", &[sid("s-1")]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, owner_of(&topology, &ClientKey::from("s-1")));
    assert_eq!(reply.seen_path.as_deref(), Some("/api/orders/7"));

    // The gateway's own routes never reach the stack.
    let reply = get_via(&client, gateway, "/healthz", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "gateway ok");
    assert_eq!(reply.served_by, None);
}

#[tokio::test]
async fn requests_without_a_usable_key_get_a_400() {
    let servers = start_instances().await;
    let gateway = start_gateway(topology_of(&servers), Mount::Nested).await;
    let client = http_client::<Empty<Bytes>>();

    // Neither a token nor the cookie.
    let reply = get_via(&client, gateway, "/api/whoami", &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("cookie sid"), "{}", reply.body);
    assert_eq!(reply.served_by, None);

    // A token that is there but unreadable is reported, not skipped in
    // favour of the cookie: a client cannot pick its route with bad input.
    for token in ["Basic dXNlcjpwYXNz", "Bearer not-a-jwt"] {
        let reply = get_via(
            &client,
            gateway,
            "/api/whoami",
            &[(AUTHORIZATION, token.to_owned()), sid("s-1")],
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{token}");
        assert_eq!(reply.served_by, None);
    }
}
