//! Scaffolding shared by the fault tests that run instances as OS
//! processes (`fault.rs`, `predictive.rs`): the topology and the pool over
//! the instance processes, the closed-loop load, and a watch on an
//! instance's state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use foresight_core::{BoxError, HealthState, InstanceId, Pool, ServedBy, Topology};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::{Service, ServiceExt, service_fn};

pub use foresight_testkit::process::topology;

/// A pool whose per-instance services are a shared hyper-util client aimed
/// at the instance's address.
pub fn pool<B>(
    topology: &Topology,
) -> Pool<
    impl Service<
        Request<B>,
        Response = Response<Incoming>,
        Error = hyper_util::client::legacy::Error,
        Future: Send,
    > + Clone
    + Send
    + Sync
    + 'static,
>
where
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + Unpin + 'static,
{
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_millis(200)));
    let client: Client<HttpConnector, B> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector);
    Pool::new(topology.clone(), move |instance| {
        let addr = instance.spec().addr.expect("instances have addresses");
        let client = client.clone();
        service_fn(move |mut request: Request<B>| {
            let path = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            *request.uri_mut() = format!("http://{addr}{path}").parse().unwrap();
            client.request(request)
        })
    })
}

/// One request of the closed loop, as its client saw it.
#[derive(Clone, Debug)]
pub struct Sample {
    pub session: usize,
    /// When it was sent, from the start of the run.
    pub at: Duration,
    pub latency: Duration,
    pub ok: bool,
    pub served_by: Option<InstanceId>,
}

/// The bounds of a closed loop.
pub struct Load {
    /// Each session waits this long between a response and its next
    /// request; the sessions' first requests are spread over one think.
    pub think: Duration,
    /// The loop ends this long after its start…
    pub run: Duration,
    /// …or when this is set…
    pub stop: Option<Arc<AtomicBool>>,
    /// …or after this many requests per session.
    pub max_per_session: usize,
}

/// Runs the closed loop: each session sends a GET with its key in
/// `x-session`, reads the whole response, thinks, and goes again, within
/// the bounds of `load`. Returns every sample, in the order they were sent.
pub async fn drive<S>(service: S, sessions: Vec<String>, start: Instant, load: Load) -> Vec<Sample>
where
    S: Service<Request<Empty<Bytes>>, Response = Response<Incoming>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    let count = sessions.len().max(1) as u32;
    let load = Arc::new(load);
    let tasks: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(session, key)| {
            let service = service.clone();
            let load = load.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                tokio::time::sleep(load.think * session as u32 / count).await;
                while start.elapsed() < load.run
                    && samples.len() < load.max_per_session
                    && !load
                        .stop
                        .as_ref()
                        .is_some_and(|s| s.load(Ordering::Relaxed))
                {
                    let request = Request::get("/")
                        .header("x-session", key.as_str())
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let sent = Instant::now();
                    let result = service.clone().oneshot(request).await.map_err(|_| ());
                    let (ok, served_by) = match result {
                        Ok(response) => {
                            let served =
                                response.extensions().get::<ServedBy>().map(|s| s.0.clone());
                            let good = response.status().is_success();
                            let body = response.into_body().collect().await;
                            (good && body.is_ok(), served)
                        }
                        Err(_) => (false, None),
                    };
                    samples.push(Sample {
                        session,
                        at: sent.duration_since(start),
                        latency: sent.elapsed(),
                        ok,
                        served_by,
                    });
                    tokio::time::sleep(load.think).await;
                }
                samples
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_by_key(|s| s.at);
    all
}

/// Polls `victim`'s state every millisecond until `done` (bounded by
/// `limit`); returns when that happened, from `start`.
pub async fn watch(
    topology: &Topology,
    victim: &str,
    start: Instant,
    limit: Duration,
    done: impl Fn(HealthState) -> bool,
) -> Option<Duration> {
    let slot = topology.health(&victim.into()).unwrap();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done(slot.state()) {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}
