//! Stage 1: who serves whom, and what moves when an instance leaves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use bytes::Bytes;
use foresight::forward::{Forward, Upstream, http_client};
use foresight::prelude::*;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use tower::ServiceBuilder;

use foresight_testkit::http::{Instance, serve_gateway};

const CLIENTS: usize = 300;
const REQUESTS_PER_CLIENT: usize = 4;
const INSTANCES: [(&str, f64); 3] = [("alpha", 1.0), ("beta", 1.0), ("gamma", 2.0)];

fn instance_app(name: &'static str, served: Arc<AtomicU64>) -> Router {
    Router::new()
        .route(
            "/hello",
            get(
                |State((name, served)): State<(&'static str, Arc<AtomicU64>)>| async move {
                    served.fetch_add(1, Ordering::Relaxed);
                    format!("hello from {name}")
                },
            ),
        )
        .with_state((name, served))
}

/// Every client sends its requests through the gateway; returns the
/// instance that served each client.
async fn run_clients(gateway: SocketAddr) -> BTreeMap<usize, String> {
    let client = http_client::<Empty<Bytes>>();
    let mut tasks = Vec::new();
    for id in 0..CLIENTS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = None;
            for _ in 0..REQUESTS_PER_CLIENT {
                let request = http::Request::get(format!("http://{gateway}/hello"))
                    .header("cookie", format!("theme=dark; sid=client-{id:04}"))
                    .body(Empty::new())
                    .expect("request");
                let response = client.request(request).await.expect("gateway reachable");
                assert!(
                    response.status().is_success(),
                    "status {}",
                    response.status()
                );
                let instance = response.headers()["x-foresight-instance"]
                    .to_str()
                    .expect("ascii")
                    .to_owned();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes();
                assert!(body.ends_with(instance.as_bytes()));
                if let Some(previous) = seen.replace(instance.clone()) {
                    assert_eq!(previous, instance, "a session moved between requests");
                }
            }
            (id, seen.expect("at least one request"))
        }));
    }
    let mut owners = BTreeMap::new();
    for task in tasks {
        let (id, instance) = task.await.expect("client task");
        owners.insert(id, instance);
    }
    owners
}

fn print_table(title: &str, owners: &BTreeMap<usize, String>, topology: &Topology) {
    println!("\n{title}");
    println!(
        "{:<8} {:>7} {:>8} {:>11}  sample clients",
        "instance", "weight", "clients", "share/exact"
    );
    let members = topology.load();
    for instance in members.iter() {
        let name = instance.id().as_str();
        let clients: Vec<usize> = owners
            .iter()
            .filter(|(_, o)| o.as_str() == name)
            .map(|(c, _)| *c)
            .collect();
        let sample: Vec<String> = clients
            .iter()
            .take(6)
            .map(|c| format!("client-{c:04}"))
            .collect();
        println!(
            "{:<8} {:>7.1} {:>8} {:>5.1}%/{:>4.1}%  {}",
            name,
            instance.spec().weight,
            clients.len(),
            100.0 * clients.len() as f64 / owners.len() as f64,
            100.0 * members.share(instance.id()).unwrap_or(0.0),
            sample.join(" "),
        );
    }
}

pub async fn run() {
    println!("== 1. Sharding: each client key has a primary and a secondary ==");
    let mut served = Vec::new();
    let mut instances = Vec::new();
    for (name, _) in INSTANCES {
        let counter = Arc::new(AtomicU64::new(0));
        instances.push(Instance::start(name, instance_app(name, counter.clone())));
        served.push((name, counter));
    }
    let topology = Topology::from_instances(INSTANCES.iter().zip(&instances).map(
        |((name, weight), instance)| {
            InstanceSpec::new(*name)
                .with_addr(instance.addr)
                .with_weight(*weight)
        },
    ))
    .expect("valid topology");
    let upstream = Upstream::http();
    let pool = Pool::new(topology.clone(), move |i| {
        Forward::<Incoming>::new(&upstream, i)
    })
    .with_instance_header(true);
    let gateway = serve_gateway(
        ServiceBuilder::new()
            .layer(foresight::edge())
            .layer(ShardLayer::new(topology.clone(), CookieKey::new("sid")))
            .service(pool),
    )
    .await;
    println!(
        "gateway on http://{gateway}, {CLIENTS} clients × {REQUESTS_PER_CLIENT} requests, keyed by the `sid` cookie"
    );

    let before = run_clients(gateway).await;
    print_table("Who serves whom (weights 1 : 1 : 2)", &before, &topology);
    for (name, counter) in &served {
        println!(
            "  {name} served {} requests",
            counter.load(Ordering::Relaxed)
        );
    }

    let secondary: BTreeMap<usize, String> = before
        .keys()
        .map(|&c| {
            let key = ClientKey::from(format!("client-{c:04}"));
            (c, topology.rank(&key, 0, 2)[1].to_string())
        })
        .collect();
    println!("\nbeta leaves (its server stops, the topology drops it)…");
    instances[1].kill();
    topology.remove(&"beta".into());
    let after = run_clients(gateway).await;
    print_table("After beta left", &after, &topology);

    let moved: Vec<usize> = before
        .keys()
        .copied()
        .filter(|c| before[c] != after[c])
        .collect();
    let betas = before.values().filter(|o| *o == "beta").count();
    let to_secondary = moved.iter().filter(|c| after[*c] == secondary[*c]).count();
    let others_moved = moved.iter().filter(|c| before[*c] != "beta").count();
    println!(
        "\nkeys moved: {} of {} ({:.1}%); beta owned {}; moved to their secondary: {}; other keys moved: {}",
        moved.len(),
        before.len(),
        100.0 * moved.len() as f64 / before.len() as f64,
        betas,
        to_secondary,
        others_moved,
    );
    assert_eq!(others_moved, 0, "only beta's keys may move");
    assert_eq!(
        to_secondary,
        moved.len(),
        "every moved key lands on its secondary"
    );
}
