//! HTTP instances and gateways on loopback ports.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::net::SocketAddr;

use axum::Router;
use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tower_service::Service;

/// An axum instance server with a Tokio runtime of its own: [`kill`]
/// drops the runtime, so the listener and every open connection vanish at
/// once, as they do when a process is killed.
///
/// [`kill`]: Instance::kill
#[derive(Debug)]
pub struct Instance {
    /// The instance's name.
    pub name: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    runtime: Option<Runtime>,
}

impl Instance {
    /// Serves `app` on a free loopback port, on one worker thread.
    ///
    /// # Panics
    ///
    /// When no loopback port or runtime can be had.
    pub fn start(name: &'static str, app: Router) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("instance runtime");
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("instance server");
        });
        Self {
            name,
            addr,
            runtime: Some(runtime),
        }
    }

    /// Stops the instance like a SIGKILL: listener and connections vanish.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Serves a gateway stack (HTTP/1 and HTTP/2) with hyper on a free loopback
/// port, on the current runtime; returns its address.
///
/// # Panics
///
/// When no loopback port can be had.
pub async fn serve_gateway<S, B>(stack: S) -> SocketAddr
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = TowerToHyperService::new(stack.clone());
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}
