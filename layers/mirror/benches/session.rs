//! Criterion benches of the session layer, in process (no network): one
//! request through an axum router that reads, or increments, a counter in
//! the session, for no session layer, SessionMirrorLayer over MemoryStore,
//! CachedStore<MemoryStore> (single writer), RedisStore,
//! CachedStore<RedisStore> (opted out to bus-only consistency, with and
//! without the version check), and tower-sessions 0.14 over its
//! MemoryStore. The loopback load test with wrk is `examples/loadtest.rs`,
//! which also measures the default (acknowledged writes).
//!
//! ```text
//! cargo bench -p foresight-mirror --bench session
//! ```

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Extension;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use foresight_mirror::{Session, SessionMirrorLayer};
use foresight_store::{CachedStore, MemoryStore, RedisStore};
use foresight_testkit::RedisServer;
use http::Request;
use http::header::{COOKIE, SET_COOKIE};
use tokio::runtime::Runtime;
use tower::ServiceExt;

async fn read(Extension(s): Extension<Session>) -> String {
    let n: u64 = s.get("n").await.ok().flatten().unwrap_or(0);
    n.to_string()
}

async fn incr(Extension(s): Extension<Session>) -> String {
    let n: u64 = s.get("n").await.ok().flatten().unwrap_or(0);
    let _ = s.insert("n", &(n + 1)).await;
    (n + 1).to_string()
}

async fn ts_read(s: tower_sessions::Session) -> String {
    let n: u64 = s.get("n").await.ok().flatten().unwrap_or(0);
    n.to_string()
}

async fn ts_incr(s: tower_sessions::Session) -> String {
    let n: u64 = s.get("n").await.ok().flatten().unwrap_or(0);
    let _ = s.insert("n", n + 1).await;
    (n + 1).to_string()
}

fn mirror(layer: SessionMirrorLayer) -> Router {
    Router::new()
        .route("/read", get(read))
        .route("/incr", get(incr))
        .layer(layer)
}

fn request(path: &str, cookie: &str) -> Request<Body> {
    let mut builder = Request::get(path);
    if !cookie.is_empty() {
        builder = builder.header(COOKIE, cookie);
    }
    builder.body(Body::empty()).unwrap()
}

/// Creates a session through the app and returns its cookie.
fn session_cookie(rt: &Runtime, app: &Router) -> String {
    rt.block_on(async {
        let response = app.clone().oneshot(request("/incr", "")).await.unwrap();
        response
            .headers()
            .get(SET_COOKIE)
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .unwrap_or_default()
    })
}

fn benches(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let redis = RedisServer::start();
    let redis_store = RedisStore::standalone(&redis.url()).unwrap();
    let (cached_redis, checked_redis) = rt.block_on(async {
        let bus = redis_store.invalidation_bus();
        assert!(bus.wait_connected(Duration::from_secs(10)).await);
        // Bus-only consistency (opted out of the default, acknowledged
        // writes): its hit is the default's hit, its write does not wait.
        let cached = CachedStore::builder(redis_store.clone().with_key_prefix("cached:"))
            .with_bus(bus.clone())
            .with_acknowledged_writes(false)
            .build();
        // The same, serving a hit only after a version check (read-your-writes).
        let checked = CachedStore::builder(redis_store.clone().with_key_prefix("checked:"))
            .with_bus(bus)
            .with_acknowledged_writes(false)
            .with_version_check(true)
            .build();
        (cached, checked)
    });
    let variants: Vec<(&str, Router)> = vec![
        (
            "bare",
            Router::new()
                .route("/read", get(|| async { "0" }))
                .route("/incr", get(|| async { "0" })),
        ),
        ("mirror-memory", mirror(SessionMirrorLayer::new(MemoryStore::new()))),
        (
            "mirror-cached-memory",
            // One instance, the only writer: hits unchecked.
            mirror(SessionMirrorLayer::new(
                CachedStore::builder(MemoryStore::new())
                    .with_acknowledged_writes(false)
                    .build(),
            )),
        ),
        ("mirror-redis", mirror(SessionMirrorLayer::new(redis_store))),
        ("mirror-cached-redis", mirror(SessionMirrorLayer::new(cached_redis))),
        (
            "mirror-cached-redis-version-check",
            mirror(SessionMirrorLayer::new(checked_redis)),
        ),
        (
            "tower-sessions-memory",
            Router::new()
                .route("/read", get(ts_read))
                .route("/incr", get(ts_incr))
                .layer(
                    tower_sessions::SessionManagerLayer::new(
                        tower_sessions::MemoryStore::default(),
                    )
                    .with_secure(false),
                ),
        ),
    ];
    for path in ["/read", "/incr"] {
        let mut group = c.benchmark_group(format!("session{path}"));
        group.measurement_time(Duration::from_secs(2));
        group.warm_up_time(Duration::from_millis(500));
        for (name, app) in &variants {
            let cookie = session_cookie(&rt, app);
            group.bench_function(*name, |b| {
                b.to_async(&rt).iter(|| {
                    let app = app.clone();
                    let req = request(path, &cookie);
                    async move { app.oneshot(req).await.unwrap() }
                })
            });
        }
        group.finish();
    }
    drop(redis);
}

criterion_group!(session, benches);
criterion_main!(session);
