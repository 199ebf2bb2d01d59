//! The Foresight stack served directly by a hyper 1 server (hyper-util
//! `auto::Builder` + `TowerToHyperService`) over real loopback sockets, the
//! peer address attached per connection as `PeerAddr`, keyed by a
//! `FingerprintKey`.

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use foresight::core::INSTANCE_HEADER;
use foresight::core::key::{PeerAddr, RequestHead};
use foresight::forward::{Forward, Upstream};
use foresight::prelude::*;
use http::header::{ACCEPT_LANGUAGE, USER_AGENT};
use http::{HeaderName, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use support::{NamedServer, owner_of, topology_of};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

/// A hyper gateway over the stack. With `attach_peer`, each connection's
/// requests carry the peer address, as a real gateway does; without it, the
/// wiring is "forgotten".
async fn start_gateway<K: KeyExtractor>(
    topology: Topology,
    key: K,
    attach_peer: bool,
) -> SocketAddr {
    let upstream = Upstream::http();
    let pool = Pool::new(topology.clone(), move |instance| {
        Forward::<Incoming>::new(&upstream, instance)
    })
    .with_instance_header(true);
    let stack = ServiceBuilder::new()
        .layer(foresight::edge())
        .layer(ShardLayer::new(topology, key))
        .service(pool);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let service = ServiceBuilder::new()
                .map_request(move |mut request: Request<Incoming>| {
                    if attach_peer {
                        request.extensions_mut().insert(PeerAddr(peer));
                    }
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

async fn start_instances() -> Vec<NamedServer> {
    let mut servers = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        servers.push(NamedServer::start(name).await);
    }
    servers
}

/// A client that keeps no idle connection: every request comes from a new
/// client port.
fn fresh_connection_client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http()
}

async fn get_via(
    client: &Client<HttpConnector, Empty<Bytes>>,
    gateway: SocketAddr,
    headers: &[(HeaderName, &str)],
) -> (StatusCode, Option<String>, String) {
    let mut request = Request::get(format!("http://{gateway}/whoami"));
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let response = client
        .request(request.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let served_by = response
        .headers()
        .get(&INSTANCE_HEADER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, served_by, String::from_utf8(body.to_vec()).unwrap())
}

/// The fingerprint of a loopback client with `agent`, computed apart from
/// the gateway. The port is arbitrary: the fingerprint leaves it out.
fn fingerprint(agent: &str) -> ClientKey {
    let request = Request::builder()
        .header(USER_AGENT, agent)
        .header(ACCEPT_LANGUAGE, "en-GB")
        .extension(PeerAddr("127.0.0.1:1".parse().unwrap()))
        .body(())
        .unwrap();
    FingerprintKey::new()
        .extract(&RequestHead::of(&request))
        .unwrap()
}

#[tokio::test]
async fn a_fingerprint_sticks_across_connections() {
    let servers = start_instances().await;
    let topology = topology_of(&servers);
    let gateway = start_gateway(topology.clone(), FingerprintKey::new(), true).await;
    let client = fresh_connection_client();

    let mut owners = std::collections::HashSet::new();
    for i in 0..60 {
        let agent = format!("agent/{i}");
        // The owner of the fingerprint *with* the peer IP: a gateway that
        // ignored `PeerAddr` would compute another key (or none at all).
        let owner = owner_of(&topology, &fingerprint(&agent));
        owners.insert(owner.clone());
        for _ in 0..3 {
            let (status, served_by, body) = get_via(
                &client,
                gateway,
                &[(USER_AGENT, &agent), (ACCEPT_LANGUAGE, "en-GB")],
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body, owner, "{agent}");
            assert_eq!(served_by.as_deref(), Some(owner.as_str()));
        }
    }
    assert_eq!(owners.len(), 3, "fingerprints spread over every instance");
}

#[tokio::test]
async fn without_the_peer_address_a_fingerprint_is_a_400() {
    let servers = start_instances().await;
    let gateway = start_gateway(topology_of(&servers), FingerprintKey::new(), false).await;
    let client = fresh_connection_client();

    let (status, served_by, body) = get_via(&client, gateway, &[(USER_AGENT, "agent/1")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("peer address"), "{body}");
    assert_eq!(served_by, None);
}

#[tokio::test]
async fn a_headers_only_fingerprint_without_the_headers_is_a_400() {
    let servers = start_instances().await;
    let topology = topology_of(&servers);
    let key = FingerprintKey::new().with_peer(false);
    let gateway = start_gateway(topology, key, true).await;
    let client = fresh_connection_client();

    let (status, served_by, body) = get_via(&client, gateway, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("fingerprinted header"), "{body}");
    assert_eq!(served_by, None);

    let (status, _, _) = get_via(&client, gateway, &[(USER_AGENT, "agent/1")]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_http2_client_is_served_too() {
    let servers = start_instances().await;
    let topology = topology_of(&servers);
    let gateway = start_gateway(topology.clone(), FingerprintKey::new(), true).await;
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();

    let agent = "agent/h2";
    let (status, served_by, body) = get_via(
        &client,
        gateway,
        &[(USER_AGENT, agent), (ACCEPT_LANGUAGE, "en-GB")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, owner_of(&topology, &fingerprint(agent)));
    assert_eq!(served_by.as_deref(), Some(body.as_str()));
}
