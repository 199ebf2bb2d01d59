//! Sessions on Redis survive the death of their primary: the whole stack
//! (ShardLayer → HealthFailoverLayer → ShadowWriteLayer → Pool) in front of
//! three instances running SessionMirrorLayer over one RedisStore (each
//! behind its own cache, invalidated through Redis pub/sub). Closed-loop
//! load; one instance is killed mid-run (its runtime dropped: listener and
//! connections vanish at once). Counted: client-visible errors, and
//! acknowledged session writes missing afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Extension, Path};
use axum::routing::{get, put};
use bytes::Bytes;
use foresight::core::key::MissingKeyPolicy;
use foresight::failover::ReplayBody;
use foresight::forward::{Forward, http_client};
use foresight::prelude::*;
use foresight::shadow::ShadowBody;
use foresight_store::RedisStore;
use foresight_testkit::RedisServer;
use foresight_testkit::http::{Instance, serve_gateway};
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use tower::ServiceBuilder;

const SESSIONS: usize = 200;
const COOKIE: &str = "__Host-session";

async fn write(Extension(session): Extension<Session>, Path(n): Path<u64>) -> StatusCode {
    match session.insert("n", &n).await {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn read(Extension(session): Extension<Session>) -> String {
    let n: u64 = session.get("n").await.ok().flatten().unwrap_or(0);
    n.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_primary_loses_no_request_and_no_acknowledged_write() {
    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let mut instances: Vec<Instance> = ["alpha", "beta", "gamma"]
        .into_iter()
        .map(|name| {
            // A store (and connection) of its own per instance, as separate
            // processes would have.
            let store = RedisStore::standalone(&redis.url()).unwrap();
            let cached = CachedStore::new(store.clone()).with_bus(store.invalidation_bus());
            let app = Router::new()
                .route("/n/{n}", put(write))
                .route("/n", get(read))
                .layer(SessionMirrorLayer::new(cached));
            Instance::start(name, app)
        })
        .collect();
    let topology = Topology::from_instances(
        instances
            .iter()
            .map(|i| InstanceSpec::new(i.name).with_addr(i.addr)),
    )
    .unwrap();
    let client = http_client::<ShadowBody<ReplayBody<Incoming>>>();
    let failover = HealthFailoverLayer::new(topology.clone());
    let shadow = ShadowWriteLayer::new(topology.clone());
    let gateway = serve_gateway(
        ServiceBuilder::new()
            .layer(foresight::edge())
            .layer(
                ShardLayer::new(topology.clone(), CookieKey::new(COOKIE))
                    .with_missing_key(MissingKeyPolicy::SpreadRandomly),
            )
            .layer(failover.clone())
            .layer(shadow.clone())
            .service(Pool::new(topology.clone(), move |i| {
                Forward::new(client.clone(), i)
            })),
    )
    .await;

    // Each session: create, then overwrite its counter in a closed loop until
    // told to stop, remembering the last value the gateway acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let web = http_client::<Empty<Bytes>>();
    let mut tasks = Vec::new();
    for _ in 0..SESSIONS {
        let (web, stop, sent) = (web.clone(), stop.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let (mut cookie, mut acknowledged, mut errors) = (String::new(), 0u64, 0usize);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 10_000 {
                n += 1;
                let request = http::Request::put(format!("http://{gateway}/n/{n}"))
                    .header("cookie", &cookie)
                    .body(Empty::new())
                    .unwrap();
                sent.fetch_add(1, Ordering::Relaxed);
                match web.request(request).await {
                    Ok(response) if response.status().is_success() => {
                        if let Some(set) = response.headers().get("set-cookie") {
                            cookie = set.to_str().unwrap().split(';').next().unwrap().to_owned();
                        }
                        acknowledged = n;
                    }
                    Ok(response) => {
                        let status = response.status();
                        let body = response.into_body().collect().await.map(|b| b.to_bytes());
                        eprintln!("client-visible status {status}: {body:?}");
                        errors += 1;
                    }
                    Err(error) => {
                        eprintln!("client-visible error {error}");
                        errors += 1;
                    }
                }
            }
            (cookie, acknowledged, errors)
        }));
    }

    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = sent.load(Ordering::Relaxed);
    instances[1].kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    let total = sent.load(Ordering::Relaxed);

    let stats = failover.stats();
    let states: Vec<_> = topology
        .load()
        .iter()
        .map(|i| (i.id().to_string(), i.health().state()))
        .collect();
    eprintln!("after the run: {stats:?}; states {states:?}");
    let mut missing = 0;
    for (cookie, acknowledged, _) in &results {
        let request = http::Request::get(format!("http://{gateway}/n"))
            .header("cookie", cookie)
            .body(Empty::new())
            .unwrap();
        let response = web.request(request).await.unwrap();
        assert!(response.status().is_success());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let stored: u64 = String::from_utf8_lossy(&body).parse().unwrap();
        // PUT sets the value, so a replay may apply one write twice but never
        // an older one over a newer one: the store holds the last write.
        if stored != *acknowledged {
            missing += 1;
        }
    }
    let errors: usize = results.iter().map(|r| r.2).sum();
    eprintln!(
        "{total} requests in {elapsed:?} ({:.0} req/s), {before_kill} before the kill; \
         client-visible errors: {errors}; acknowledged writes missing: {missing} of {SESSIONS} sessions; \
         replays: {}, ejections: {}, shadows sent: {}",
        total as f64 / elapsed.as_secs_f64(),
        stats.replays,
        stats.ejections,
        shadow.stats().sent,
    );
    assert_eq!(errors, 0, "no client-visible error");
    assert_eq!(missing, 0, "no acknowledged write lost");
    assert!(stats.ejections >= 1, "the dead instance was ejected");
}
