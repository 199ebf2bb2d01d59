//! A standalone Foresight gateway in front of real app servers.
//!
//! ```text
//! cargo run --release --example gateway -- \
//!     --listen 127.0.0.1:8080 --cookie __Host-session \
//!     --instance alpha=127.0.0.1:9001 --instance beta=127.0.0.1:9002 --instance gamma=127.0.0.1:9003@2
//! ```
//!
//! Every request is routed by its key (`--cookie NAME`, `--header NAME`, or
//! the JWT subject with `--jwt`) through the routing tier of
//! `Foresight::builder()` (`edge → ShardLayer → HealthFailoverLayer →
//! ShadowWriteLayer → Pool`, with one forecaster that learns from the
//! routed requests and predicts each instance's degradation) to the
//! instances, over a hyper-util client. A request without a key is spread
//! by a fresh random key. The gateway answers two paths itself:
//! `/foresight/metrics` (Prometheus text: routes, failovers, shadows, pool
//! errors…) and `/foresight/instances` (each instance's health state,
//! latency average, error ratio and exact key share). `--instance
//! NAME=ADDR[@WEIGHT]` may be repeated; several gateways given the same list
//! route every key the same way.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use foresight::ServiceBuilderExt;
use foresight::core::key::KeyExtractor;
use foresight::failover::ReplayBody;
use foresight::forward::{Forward, http_client};
use foresight::prelude::*;
use foresight::shadow::ShadowBody;
use foresight::stack::{BuildError, Foresight};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

const USAGE: &str = "usage: gateway --listen ADDR (--cookie NAME | --header NAME | --jwt) \
                     --instance NAME=ADDR[@WEIGHT]...";

struct Args {
    listen: SocketAddr,
    key: Key,
    instances: Vec<InstanceSpec>,
}

enum Key {
    Cookie(String),
    Header(http::HeaderName),
    Jwt,
}

fn parse_instance(text: &str) -> Result<InstanceSpec, String> {
    let (name, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("instance {text:?}: expected NAME=ADDR[@WEIGHT]"))?;
    let (addr, weight) = match rest.split_once('@') {
        Some((addr, weight)) => (
            addr,
            weight
                .parse::<f64>()
                .map_err(|e| format!("instance {name}: weight {weight:?}: {e}"))?,
        ),
        None => (rest, 1.0),
    };
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| format!("instance {name}: address {addr:?}: {e}"))?;
    Ok(InstanceSpec::new(name).with_addr(addr).with_weight(weight))
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut listen = None;
    let mut key = None;
    let mut instances = Vec::new();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = Some(value()?.parse().map_err(|e| format!("--listen: {e}"))?),
            "--cookie" => key = Some(Key::Cookie(value()?)),
            "--header" => {
                let name = value()?;
                let name = http::HeaderName::try_from(name.as_str())
                    .map_err(|e| format!("--header {name:?}: {e}"))?;
                key = Some(Key::Header(name));
            }
            "--jwt" => key = Some(Key::Jwt),
            "--instance" => instances.push(parse_instance(&value()?)?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen is required")?,
        key: key.ok_or("one of --cookie, --header, --jwt is required")?,
        instances,
    })
}

/// The routing tier from `Foresight::builder()`: edge, request recording
/// into the shared forecaster, Shard, HealthFailover (reading the
/// forecaster's predicted degradation of each instance) and ShadowWrite, in
/// front of a pool of HTTP forwarders. The gateway does not authenticate:
/// the instances do.
fn gateway<K: KeyExtractor + Clone>(topology: &Topology, key: K) -> Result<Router, BuildError> {
    let foresight = Foresight::builder(topology.clone())
        .with_key(key)
        .without_tokens()
        .build()?;
    let client = http_client::<ShadowBody<ReplayBody<Body>>>();
    let stack = ServiceBuilder::new().foresight(&foresight).service(
        Pool::new(topology.clone(), move |i| Forward::new(client.clone(), i))
            .with_instance_header(true),
    );
    Ok(Router::new().fallback_service(stack))
}

fn instances_report(topology: &Topology) -> String {
    let members = topology.load();
    let mut out =
        String::from("instance\taddress\tweight\tshare\tstate\tlatency_ms\terror_ratio\n");
    for instance in members.iter() {
        let health = instance.health();
        out.push_str(&format!(
            "{}\t{}\t{}\t{:.4}\t{:?}\t{:.2}\t{:.3}\n",
            instance.id(),
            instance
                .spec()
                .addr
                .map_or_else(|| "-".to_owned(), |a| a.to_string()),
            instance.spec().weight,
            members.share(instance.id()).unwrap_or(0.0),
            health.state(),
            health.latency_ewma() * 1e3,
            health.error_ratio(),
        ));
    }
    out
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) if !args.instances.is_empty() => args,
        Ok(_) => {
            eprintln!("at least one --instance is required\n{USAGE}");
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // The recorder goes in before the layers are built: they register their
    // counters once, when built.
    let prometheus = match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!("metrics recorder: {error}");
            return ExitCode::FAILURE;
        }
    };
    let topology = match Topology::from_instances(args.instances) {
        Ok(topology) => topology,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let proxied = match args.key {
        Key::Cookie(name) => gateway(&topology, CookieKey::new(name)),
        Key::Header(name) => gateway(&topology, HeaderKey::from_name(name)),
        Key::Jwt => gateway(&topology, JwtSubjectKey::new()),
    };
    let proxied = match proxied {
        Ok(router) => router,
        Err(error) => {
            eprintln!("gateway: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = topology.clone();
    let app = Router::new()
        .route(
            "/foresight/metrics",
            get(move || {
                let prometheus = prometheus.clone();
                async move { prometheus.render() }
            }),
        )
        .route(
            "/foresight/instances",
            get(move || {
                let topology = report.clone();
                async move { instances_report(&topology) }
            }),
        )
        .merge(proxied);
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "gateway on http://{} for {} instances",
        args.listen,
        topology.load().len()
    );
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server: {error}");
            ExitCode::FAILURE
        }
    }
}
