//! Real instances on loopback ports for the end-to-end tests (plain hyper,
//! axum and tonic servers), and the small helpers the stacks over them
//! share.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::Router;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use foresight::core::{BoxError, ClientKey, InstanceSpec, Topology};
use foresight::shard::DEFAULT_SEED;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// A hyper server that answers every request with its own name.
pub struct NamedServer {
    pub name: String,
    pub addr: SocketAddr,
    tasks: JoinSet<()>,
}

impl NamedServer {
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut tasks = JoinSet::new();
        let own = name.to_owned();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let own = own.clone();
                connections.spawn(async move {
                    let service = service_fn(move |_req: Request<Incoming>| {
                        let own = own.clone();
                        async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(own)))) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            name: name.to_owned(),
            addr,
            tasks,
        }
    }

    /// An axum app that answers every path with its name, and tells in
    /// [`SEEN_PATH`] which path it was asked for.
    pub async fn start_axum(name: &str) -> Self {
        let own = name.to_owned();
        let app = Router::new().fallback(move |uri: http::Uri| {
            let own = own.clone();
            async move { ([(SEEN_PATH, uri.path().to_owned())], own) }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            name: name.to_owned(),
            addr,
            tasks,
        }
    }

    /// A tonic server with the standard `grpc.health.v1.Health` service.
    /// Besides the server-wide entry `""`, it reports an entry named after
    /// itself as serving: only this server knows it, so asking for it proves
    /// which server answered.
    pub async fn start_grpc(name: &str) -> Self {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await;
        });
        Self {
            name: name.to_owned(),
            addr,
            tasks,
        }
    }

    /// Stops accepting and drops every open connection.
    pub fn stop(&mut self) {
        self.tasks.abort_all();
    }
}

impl Drop for NamedServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Response header of [`NamedServer::start_axum`] instances: the path they
/// were asked for.
pub const SEEN_PATH: &str = "x-seen-path";

/// The topology of `servers`: each under its name, at its address, weight 1.
pub fn topology_of<'a>(servers: impl IntoIterator<Item = &'a NamedServer>) -> Topology {
    Topology::from_instances(
        servers
            .into_iter()
            .map(|s| InstanceSpec::new(s.name.as_str()).with_addr(s.addr)),
    )
    .unwrap()
}

/// The instance a `ShardLayer` with the default seed picks for `key`,
/// computed independently of the stack under test.
pub fn owner_of(topology: &Topology, key: &ClientKey) -> String {
    topology.rank(key, DEFAULT_SEED, 1)[0].to_string()
}

/// An unsigned JWT (`alg: none`, empty signature) whose `sub` is `sub`:
/// routing reads the subject without verifying it.
pub fn demo_token(sub: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"{sub}"}}"#));
    format!("{header}.{claims}.")
}

/// The gRPC status for an error of a client-side stack: errors Foresight
/// knows get the code nearest their HTTP status, anything else (a channel
/// that cannot connect) is left to tonic's own mapping.
pub fn grpc_status(error: BoxError) -> tonic::Status {
    foresight::grpc::status(error)
}

/// A loopback port with nothing listening on it: connections are refused.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}
