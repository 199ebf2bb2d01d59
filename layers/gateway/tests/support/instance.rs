//! The instance process of the composed tests: an axum app with
//! SessionMirrorLayer over `CachedStore<RedisStore>` on a Redis Cluster, the
//! cache invalidated through Redis pub/sub and version-checked on each hit,
//! which tells in each response whether its session load was a cache hit.
//!
//! `CachedStore` counts its hits and misses in the `metrics` registry
//! (`foresight_store_cache_hits_total`, `_misses_total`). The instance
//! installs a recorder that adds each increment to the request whose task
//! made it (a Tokio task-local set around the mirror), and the response
//! carries the request's counts in [`HITS_HEADER`] and [`MISSES_HEADER`],
//! beside the instance's name in [`INSTANCE_HEADER`]. The counts are the
//! store's own, not a guess from outside.
//!
//! Routes: `PUT /n/{n}` sets the session's `n` (idempotent; creates the
//! session when the request has none) and answers `n`; `GET /n` answers the
//! session's `n` (`none` when unset).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Path, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, put};
use foresight::core::attempt::ATTEMPT_HEADER;
use foresight_mirror::{Session, SessionMirrorLayer};
use foresight_store::{CachedStore, RedisStore};
use foresight_testkit::process;
use http::{HeaderValue, StatusCode};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

/// The environment variable that carries the cluster's node URLs, comma
/// separated, to an instance process.
pub const CLUSTER_URLS_ENV: &str = "FORESIGHT_COMPOSED_CLUSTER_URLS";
/// The environment variable that, set to `n`, makes an instance's store
/// acknowledge a write only once `n` replicas confirmed it (`WAIT`).
pub const REPLICAS_ENV: &str = "FORESIGHT_COMPOSED_REPLICAS";
/// The serving instance's name.
pub const INSTANCE_HEADER: &str = "x-instance-name";
/// Session loads of the request answered from the instance's cache.
pub const HITS_HEADER: &str = "x-cache-hits";
/// Session loads of the request that read through to Redis.
pub const MISSES_HEADER: &str = "x-cache-misses";
/// The attempt number of the request as the routing tier tagged it (`0`
/// for a first attempt or an untagged request).
pub const ATTEMPT_NUMBER_HEADER: &str = "x-attempt-number";

const HITS_METRIC: &str = "foresight_store_cache_hits_total";
const MISSES_METRIC: &str = "foresight_store_cache_misses_total";

/// The cache loads of one request.
#[derive(Debug, Default)]
struct RequestTally {
    hits: AtomicU64,
    misses: AtomicU64,
}

tokio::task_local! {
    static TALLY: Arc<RequestTally>;
}

/// Which count a counter adds to.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Hit,
    Miss,
}

impl CounterFn for Outcome {
    fn increment(&self, value: u64) {
        // Outside a request (the bus, the heartbeat) there is nothing to add to.
        let _ = TALLY.try_with(|tally| match self {
            Outcome::Hit => tally.hits.fetch_add(value, Ordering::Relaxed),
            Outcome::Miss => tally.misses.fetch_add(value, Ordering::Relaxed),
        });
    }

    fn absolute(&self, _value: u64) {}
}

/// A recorder that keeps the cache's hit and miss counters per request and
/// drops every other metric.
#[derive(Debug)]
struct TallyRecorder;

impl Recorder for TallyRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match key.name() {
            HITS_METRIC => Counter::from_arc(Arc::new(Outcome::Hit)),
            MISSES_METRIC => Counter::from_arc(Arc::new(Outcome::Miss)),
            _ => Counter::noop(),
        }
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// Counts the request's cache loads and reports them, with the instance's
/// name, in the response headers.
async fn report_cache_loads(name: Arc<str>, request: Request, next: Next) -> Response {
    let attempt = request
        .headers()
        .get(&ATTEMPT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit_once('.'))
        .map_or("0", |(_, number)| number)
        .to_owned();
    let tally = Arc::new(RequestTally::default());
    let mut response = TALLY.scope(tally.clone(), next.run(request)).await;
    let headers = response.headers_mut();
    let count = |n: &AtomicU64| HeaderValue::from(n.load(Ordering::Relaxed));
    headers.insert(INSTANCE_HEADER, HeaderValue::from_str(&name).unwrap());
    headers.insert(HITS_HEADER, count(&tally.hits));
    headers.insert(MISSES_HEADER, count(&tally.misses));
    headers.insert(
        ATTEMPT_NUMBER_HEADER,
        HeaderValue::from_str(&attempt).unwrap(),
    );
    response
}

async fn write(Extension(session): Extension<Session>, Path(n): Path<u64>) -> (StatusCode, String) {
    match session.insert("n", &n).await {
        Ok(_) => (StatusCode::OK, n.to_string()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn read(Extension(session): Extension<Session>) -> (StatusCode, String) {
    match session.get::<u64>("n").await {
        Ok(Some(n)) => (StatusCode::OK, n.to_string()),
        Ok(None) => (StatusCode::OK, "none".to_owned()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// The instance's app over the cluster at `urls`.
async fn app(name: &str, urls: &[String]) -> Router {
    let mut store = RedisStore::cluster(urls.iter().cloned()).expect("a cluster store");
    if let Ok(n) = std::env::var(REPLICAS_ENV) {
        let n = n.parse().expect("a number of replicas");
        store = store.with_replicas(n, Duration::from_millis(500));
    }
    let bus = store.invalidation_bus();
    // Sessions move between instances (failover, reload): a read on the
    // new instance must see the write the old one acknowledged a moment
    // ago, whether its announcement has arrived or not. The version check
    // gives read-your-writes across instances; it is the default on a
    // Redis Cluster (whose bus cannot acknowledge writes), named here
    // since these tests count on it.
    let cached = CachedStore::builder(store)
        .with_bus(bus.clone())
        .build()
        .with_version_check(true);
    // The cache is bypassed while the bus is down: wait for it, so that the
    // run goes through the cache from the first request.
    assert!(
        bus.wait_connected(Duration::from_secs(10)).await,
        "instance {name}: the invalidation bus did not connect"
    );
    let name: Arc<str> = name.into();
    Router::new()
        .route("/n/{n}", put(write))
        .route("/n", get(read))
        .layer(SessionMirrorLayer::new(cached))
        .layer(middleware::from_fn(move |request, next| {
            report_cache_loads(name.clone(), request, next)
        }))
}

/// The body of the entry test of an instance process: serves when this
/// binary runs as an instance (see `foresight_testkit::process`), returns
/// at once in a normal test run.
pub fn serve_if_instance() {
    let Some(name) = process::instance_name() else {
        return;
    };
    let urls: Vec<String> = std::env::var(CLUSTER_URLS_ENV)
        .expect("the cluster's node URLs")
        .split(',')
        .map(str::to_owned)
        .collect();
    metrics::set_global_recorder(TallyRecorder).expect("the only recorder");
    process::serve_axum_instance(async move || app(&name, &urls).await);
}
