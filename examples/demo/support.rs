//! Instances and a gateway on loopback for the demo.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::Router;
use foresight::core::BoxError;
use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tower::Service;

/// An instance server with a runtime of its own, so that killing it drops
/// every connection at once, as a crashed process would.
pub struct Instance {
    pub name: &'static str,
    pub addr: SocketAddr,
    runtime: Option<Runtime>,
}

impl Instance {
    pub fn start(name: &'static str, app: Router) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("addr");
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

/// Serves a gateway stack on a loopback port with hyper.
pub async fn serve_gateway<S, B>(stack: S) -> SocketAddr
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
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
