//! Stage 2: sessions survive the death of their instance.
//!
//! Three instances keep sessions with `SessionMirrorLayer` over one shared
//! store (each behind its own cache, invalidated across instances). The
//! gateway routes by the session cookie, copies every request to the
//! secondary (`ShadowWriteLayer`) and replays on it when the primary fails
//! (`HealthFailoverLayer`). Mid-run one instance is killed; the clients must
//! see no error and every session must hold its last write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Path};
use axum::routing::{get, put};
use bytes::Bytes;
use foresight::core::key::MissingKeyPolicy;
use foresight::forward::{Forward, Upstream, http_client};
use foresight::prelude::*;
use foresight::store::LocalBus;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use tower::ServiceBuilder;

use foresight_testkit::http::{Instance, serve_gateway};

const CLIENTS: usize = 200;
const WRITES: u64 = 20;
const COOKIE: &str = "__Host-session";

async fn write(Extension(session): Extension<Session>, Path(n): Path<u64>) -> StatusCode {
    // PUT sets the value: replaying it on the secondary is harmless.
    match session.insert("visits", &n).await {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn read(Extension(session): Extension<Session>) -> String {
    let visits: u64 = session.get("visits").await.ok().flatten().unwrap_or(0);
    visits.to_string()
}

fn instance_app(store: CachedStore<MemoryStore>) -> Router {
    Router::new()
        .route("/visits/{n}", put(write))
        .route("/visits", get(read))
        .layer(SessionMirrorLayer::new(store))
}

struct Outcome {
    errors: usize,
    intact: usize,
}

async fn run_clients(gateway: SocketAddr, done: Arc<AtomicUsize>) -> Outcome {
    let client = http_client::<Empty<Bytes>>();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let client = client.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut cookie: Option<String> = None;
            let mut errors = 0;
            for n in 1..=WRITES {
                let mut request = http::Request::put(format!("http://{gateway}/visits/{n}"));
                if let Some(cookie) = &cookie {
                    request = request.header("cookie", cookie);
                }
                match client
                    .request(request.body(Empty::new()).expect("request"))
                    .await
                {
                    Ok(response) if response.status().is_success() => {
                        if let Some(set) = response.headers().get("set-cookie") {
                            let pair = set.to_str().expect("ascii").split(';').next();
                            cookie = pair.map(str::to_owned);
                        }
                    }
                    _ => errors += 1,
                }
                done.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let request = http::Request::get(format!("http://{gateway}/visits"))
                .header("cookie", cookie.clone().unwrap_or_default())
                .body(Empty::new())
                .expect("request");
            let last = match client.request(request).await {
                Ok(response) if response.status().is_success() => {
                    let body = response.into_body().collect().await.expect("body");
                    String::from_utf8_lossy(&body.to_bytes())
                        .parse::<u64>()
                        .ok()
                }
                _ => None,
            };
            (errors, last == Some(WRITES))
        }));
    }
    let mut outcome = Outcome {
        errors: 0,
        intact: 0,
    };
    for task in tasks {
        let (errors, intact) = task.await.expect("client task");
        outcome.errors += errors;
        outcome.intact += usize::from(intact);
    }
    outcome
}

pub async fn run() {
    println!("\n== 2. Sessions: warm standby, failover with no client-visible error ==");
    let store = MemoryStore::new();
    let bus = LocalBus::new();
    let mut instances: Vec<Instance> = ["alpha", "beta", "gamma"]
        .into_iter()
        .map(|name| {
            let cached = CachedStore::builder(store.clone())
                .with_bus(bus.clone())
                .build();
            Instance::start(name, instance_app(cached))
        })
        .collect();
    let topology = Topology::from_instances(
        instances
            .iter()
            .map(|i| InstanceSpec::new(i.name).with_addr(i.addr)),
    )
    .expect("valid topology");

    let upstream = Upstream::http();
    let failover = HealthFailoverLayer::new(topology.clone());
    // Every instance runs SessionMirrorLayer, so writes may be copied too.
    let shadow =
        ShadowWriteLayer::new(topology.clone()).with_shadow_aware(instances.iter().map(|i| i.name));
    let gateway = serve_gateway(
        ServiceBuilder::new()
            .layer(foresight::edge())
            .layer(
                ShardLayer::new(topology.clone(), CookieKey::new(COOKIE))
                    // A client's first request has no session yet.
                    .with_missing_key(MissingKeyPolicy::SpreadRandomly),
            )
            .layer(failover.clone())
            .layer(shadow.clone())
            .service(Pool::new(topology.clone(), move |i| {
                Forward::<RouteBody>::new(&upstream, i)
            })),
    )
    .await;
    println!(
        "{CLIENTS} clients × {WRITES} writes (PUT /visits/n) through http://{gateway}; beta is killed halfway"
    );

    let done = Arc::new(AtomicUsize::new(0));
    let clients = tokio::spawn(run_clients(gateway, done.clone()));
    let total = CLIENTS * WRITES as usize;
    while done.load(Ordering::Relaxed) < total / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    instances[1].kill();
    println!("beta killed after {} writes", done.load(Ordering::Relaxed));
    let outcome = clients.await.expect("clients");

    let failovers = failover.stats();
    let shadows = shadow.stats();
    println!(
        "client-visible errors: {} of {} requests",
        outcome.errors,
        total + CLIENTS
    );
    println!(
        "sessions holding their last write: {} of {CLIENTS}",
        outcome.intact
    );
    println!(
        "failover: {} replays, {} rerouted, {} ejections; shadows: {} sent, {} completed, {} dropped",
        failovers.replays,
        failovers.rerouted,
        failovers.ejections,
        shadows.sent,
        shadows.completed,
        shadows.dropped_full + shadows.dropped_unhealthy + shadows.dropped_body + shadows.timed_out,
    );
    println!(
        "beta is now {:?}",
        topology
            .health(&"beta".into())
            .map(|slot| slot.state())
            .expect("beta is a member")
    );
    assert_eq!(outcome.errors, 0, "no client-visible error");
    assert_eq!(outcome.intact, CLIENTS, "no session lost its last write");
}
