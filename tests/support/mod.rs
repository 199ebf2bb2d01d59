//! Real HTTP instances on loopback ports for the end-to-end tests.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
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
