//! Foresight end to end, on loopback, with nothing to set up.
//!
//! Three instances (real axum servers) sit behind a gateway (a real hyper
//! server) whose stack is `edge → ShardLayer → Pool`, the pool reaching the
//! instances through a hyper-util client. A few hundred simulated clients,
//! each with its own session cookie, send requests through the gateway; the
//! demo prints which instance served which clients, then takes one instance
//! out and shows that only its clients moved, each to its secondary.
//!
//! Run with `cargo run --release --example demo`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use bytes::Bytes;
use foresight::forward::{Forward, http_client};
use foresight::prelude::*;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;

const CLIENTS: usize = 300;
const REQUESTS_PER_CLIENT: usize = 4;
const INSTANCES: [(&str, f64); 3] = [("alpha", 1.0), ("beta", 1.0), ("gamma", 2.0)];

struct Instance {
    addr: SocketAddr,
    served: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

async fn start_instance(name: &'static str) -> Instance {
    let served = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/hello",
            get(
                |State((name, served)): State<(&'static str, Arc<AtomicU64>)>| async move {
                    served.fetch_add(1, Ordering::Relaxed);
                    format!("hello from {name}")
                },
            ),
        )
        .with_state((name, served.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("instance server");
    });
    Instance { addr, served, task }
}

async fn start_gateway(topology: Topology) -> SocketAddr {
    let client = http_client::<Incoming>();
    let pool = Pool::new(topology.clone(), move |i| Forward::new(client.clone(), i))
        .with_instance_header(true);
    let stack = ServiceBuilder::new()
        .layer(foresight::edge())
        .layer(ShardLayer::new(topology, CookieKey::new("sid")))
        .service(pool);
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

#[tokio::main]
async fn main() {
    let mut instances = HashMap::new();
    for (name, _) in INSTANCES {
        instances.insert(name, start_instance(name).await);
    }
    let topology = Topology::from_instances(INSTANCES.iter().map(|(name, weight)| {
        InstanceSpec::new(*name)
            .with_addr(instances[name].addr)
            .with_weight(*weight)
    }))
    .expect("valid topology");
    let gateway = start_gateway(topology.clone()).await;
    println!(
        "gateway on http://{gateway}, {CLIENTS} clients × {REQUESTS_PER_CLIENT} requests, keyed by the `sid` cookie"
    );

    let before = run_clients(gateway).await;
    print_table("Who serves whom (weights 1 : 1 : 2)", &before, &topology);
    for (name, instance) in &instances {
        println!(
            "  {name} served {} requests",
            instance.served.load(Ordering::Relaxed)
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
    instances["beta"].task.abort();
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
