//! Sessions on Redis survive the SIGKILL of their primary.
//!
//! Three instances run as separate OS processes on loopback ports (this
//! test binary run again as [`instance_process`], see
//! `foresight_testkit::process`), each with SessionMirrorLayer over a
//! RedisStore of its own behind a CachedStore invalidated through Redis
//! pub/sub, all on one `redis-server`. In this process, the whole routing
//! stack (edge → ShardLayer → HealthFailoverLayer → ShadowWriteLayer → Pool
//! of `Forward`) routes each of 200 sessions by its `x-user` header; the
//! users are chosen so that exactly half of them have the victim as their
//! primary. The session itself is the mirror's cookie.
//!
//! Each session overwrites its counter (`PUT /n/{n}`, idempotent) in a
//! closed loop with no think time; the victim process is SIGKILLed mid-run,
//! so its listener and connections vanish at once. Counted: client-visible
//! errors, and acknowledged writes missing afterwards (every session's
//! counter read back through the gateway). The achieved rate is printed,
//! never asserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Extension, Path};
use axum::routing::{get, put};
use bytes::Bytes;
use foresight::core::HealthState;
use foresight::forward::{Forward, Upstream, http_client};
use foresight::prelude::*;
use foresight::shard::DEFAULT_SEED;
use foresight_store::RedisStore;
use foresight_testkit::RedisServer;
use foresight_testkit::http::serve_gateway;
use foresight_testkit::keys::half_on_victim;
use foresight_testkit::process::{self, InstanceProcess};
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use tower::ServiceBuilder;

const SESSIONS: usize = 200;
const USER_HEADER: &str = "x-user";
const REDIS_URL_ENV: &str = "FORESIGHT_SESSION_REDIS_URL";
/// Per-session request bound, on top of the time bound.
const MAX_PER_SESSION: u64 = 10_000;

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

/// The instance server, when this binary runs as an instance process; a
/// no-op in a normal test run.
#[test]
fn instance_process() {
    if process::instance_name().is_none() {
        return;
    }
    let url = std::env::var(REDIS_URL_ENV).expect("the Redis URL of the instance");
    process::serve_axum_instance(async move || {
        let store = RedisStore::standalone(&url).unwrap();
        let bus = store.invalidation_bus();
        let cached = CachedStore::builder(store.clone())
            .with_bus(bus.clone())
            .build();
        // The cache is bypassed while the bus is down: wait for it, so that
        // the run goes through the caches from the first request.
        bus.wait_connected(Duration::from_secs(5)).await;
        Router::new()
            .route("/n/{n}", put(write))
            .route("/n", get(read))
            .layer(SessionMirrorLayer::new(cached))
    });
}

/// Every change of an instance's health state, polled each millisecond
/// until `stop`: (ms since `start`, instance, new state).
async fn watch_health(
    topology: Topology,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<(u128, String, HealthState)> {
    let slots: Vec<_> = topology
        .load()
        .iter()
        .map(|i| (i.id().to_string(), i.health().clone()))
        .collect();
    let mut last: Vec<_> = slots.iter().map(|(_, slot)| slot.state()).collect();
    let mut transitions = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        for ((id, slot), last) in slots.iter().zip(&mut last) {
            let state = slot.state();
            if state != *last {
                transitions.push((start.elapsed().as_millis(), id.clone(), state));
                *last = state;
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    transitions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_primary_loses_no_request_and_no_acknowledged_write() {
    let (_redis, mut instances) = tokio::task::spawn_blocking(|| {
        let redis = RedisServer::start();
        let url = redis.url();
        let instances: Vec<_> = ["alpha", "beta", "gamma"]
            .into_iter()
            .map(|name| InstanceProcess::spawn("instance_process", name, &[(REDIS_URL_ENV, &url)]))
            .collect();
        (redis, instances)
    })
    .await
    .unwrap();
    let topology = process::topology(&instances);
    let victim = instances[1].name.clone();
    let users = half_on_victim(&topology, &victim, "user", DEFAULT_SEED, SESSIONS);
    let upstream = Upstream::http();
    let failover = HealthFailoverLayer::new(topology.clone());
    // The instances run SessionMirrorLayer: the PUTs may be copied to them.
    let shadow = ShadowWriteLayer::new(topology.clone())
        .with_shadow_aware(instances.iter().map(|i| i.name.as_str()));
    let gateway = serve_gateway(
        ServiceBuilder::new()
            .layer(foresight::edge())
            .layer(ShardLayer::new(
                topology.clone(),
                HeaderKey::new(USER_HEADER),
            ))
            .layer(failover.clone())
            .layer(shadow.clone())
            .service(Pool::new(topology.clone(), move |i| {
                Forward::<RouteBody>::new(&upstream, i)
            })),
    )
    .await;

    // Each session: create, then overwrite its counter in a closed loop until
    // told to stop, remembering the last value the gateway acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let web = http_client::<Empty<Bytes>>();
    let mut tasks = Vec::new();
    for user in users.clone() {
        let (web, stop, sent) = (web.clone(), stop.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let (mut cookie, mut acknowledged, mut errors) = (String::new(), 0u64, 0usize);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < MAX_PER_SESSION {
                n += 1;
                let request = http::Request::put(format!("http://{gateway}/n/{n}"))
                    .header(USER_HEADER, &user)
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
                        eprintln!("{user}: client-visible status {status}: {body:?}");
                        errors += 1;
                    }
                    Err(error) => {
                        eprintln!("{user}: client-visible error {error}");
                        errors += 1;
                    }
                }
            }
            (cookie, acknowledged, errors)
        }));
    }

    let started = Instant::now();
    let transitions = tokio::spawn(watch_health(topology.clone(), started, stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = sent.load(Ordering::Relaxed);
    let stats_before_kill = failover.stats();
    // SIGKILL.
    instances[1].kill();
    let killed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    let total = sent.load(Ordering::Relaxed);
    let transitions = transitions.await.unwrap();

    let stats = failover.stats();
    let states: Vec<_> = topology
        .load()
        .iter()
        .map(|i| (i.id().to_string(), i.health().state()))
        .collect();
    eprintln!("before the kill: {stats_before_kill:?}");
    eprintln!("after the run: {stats:?}; states {states:?}");
    eprintln!(
        "health transitions (ms from the start, victim {victim} killed at {killed:?}): {transitions:?}"
    );
    let victim_state = topology.health(&victim.as_str().into()).unwrap().state();
    let mut missing = 0;
    for ((cookie, acknowledged, _), user) in results.iter().zip(&users) {
        let request = http::Request::get(format!("http://{gateway}/n"))
            .header(USER_HEADER, user)
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
            eprintln!("{user}: acknowledged {acknowledged}, stored {stored}");
            missing += 1;
        }
    }
    let errors: usize = results.iter().map(|r| r.2).sum();
    let victim_errors: usize = results[..SESSIONS / 2].iter().map(|r| r.2).sum();
    eprintln!(
        "{total} requests in {elapsed:?} ({:.0} req/s), {before_kill} before the kill; \
         client-visible errors: {errors} ({victim_errors} on the victim's sessions); \
         acknowledged writes missing: {missing} of {SESSIONS} sessions; \
         replays: {}, ejections: {}, shadows sent: {}",
        total as f64 / elapsed.as_secs_f64(),
        stats.replays,
        stats.ejections,
        shadow.stats().sent,
    );
    assert_eq!(errors, 0, "no client-visible error");
    assert_eq!(missing, 0, "no acknowledged write lost");
    assert!(stats.ejections >= 1, "the dead instance was ejected");
    assert!(
        matches!(victim_state, HealthState::Ejected | HealthState::Probing),
        "the dead instance is out of rotation, not {victim_state:?}"
    );
}
