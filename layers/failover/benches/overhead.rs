//! Per-request overhead of HealthFailover + ShadowWrite (sampling 0) over
//! Shard + Pool alone, with in-process instances that answer at once, so
//! that only the layers are measured.
//!
//! `cargo bench -p foresight-failover --bench overhead`

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use foresight_core::key::HeaderKey;
use foresight_core::{InstanceSpec, Pool, RouteBody, Topology};
use foresight_failover::HealthFailoverLayer;
use foresight_shadow::ShadowWriteLayer;
use foresight_shard::ShardLayer;
use http::{HeaderValue, Request, Response};
use http_body_util::Empty;
use tower::{Layer, Service, service_fn};

fn instances() -> Topology {
    Topology::from_instances((0..8).map(|i| InstanceSpec::new(format!("i{i}")))).unwrap()
}

fn keys() -> Vec<HeaderValue> {
    (0..1024)
        .map(|i| HeaderValue::from_str(&format!("account-{i}")).unwrap())
        .collect()
}

/// Readies `service`, calls it and polls the response once: every layer and
/// instance answers at once, so one poll completes the request.
fn once<S>(service: &mut S, key: &HeaderValue)
where
    S: Service<Request<Empty<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    call(service, key, http::Method::GET)
}

fn call<S>(service: &mut S, key: &HeaderValue, method: http::Method)
where
    S: Service<Request<Empty<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_ready());
    let mut request = Request::new(Empty::new());
    *request.method_mut() = method;
    request.headers_mut().insert("x-account-id", key.clone());
    let future = pin!(service.call(request));
    match future.poll(&mut cx) {
        Poll::Ready(result) => {
            black_box(result.unwrap());
        }
        Poll::Pending => panic!("the bench stack must answer at once"),
    }
}

fn overhead(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("per_request");

    let topology = instances();
    let pool = Pool::new(topology.clone(), |_| {
        service_fn(|_req: Request<Empty<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        })
    });
    let mut base = ShardLayer::new(topology.clone(), HeaderKey::new("x-account-id")).layer(pool);
    let mut i = 0;
    group.bench_function("shard+pool", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            once(&mut base, &keys[i]);
        })
    });

    let topology = instances();
    let pool = Pool::new(topology.clone(), |_| {
        service_fn(|_req: Request<RouteBody>| async {
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        })
    });
    let shadow = ShadowWriteLayer::new(topology.clone()).with_sampling(0.0);
    let failover = HealthFailoverLayer::new(topology.clone());
    let mut full = ShardLayer::new(topology.clone(), HeaderKey::new("x-account-id"))
        .layer(failover.layer(shadow.layer(pool)));
    let mut i = 0;
    group.bench_function("shard+failover+shadow(0)+pool", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            once(&mut full, &keys[i]);
        })
    });
    group.bench_function("shard+failover+shadow(0)+pool, POST", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            call(&mut full, &keys[i], http::Method::POST);
        })
    });

    let topology = instances();
    let pool = Pool::new(topology.clone(), |_| {
        service_fn(|_req: Request<RouteBody>| async {
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        })
    });
    let mut failover_only = ShardLayer::new(topology.clone(), HeaderKey::new("x-account-id"))
        .layer(HealthFailoverLayer::new(topology.clone()).layer(pool));
    group.bench_function("shard+failover+pool", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            once(&mut failover_only, &keys[i]);
        })
    });

    let topology = instances();
    let pool = Pool::new(topology.clone(), |_| {
        service_fn(|_req: Request<RouteBody>| async {
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        })
    });
    let mut shadow_only = ShardLayer::new(topology.clone(), HeaderKey::new("x-account-id")).layer(
        ShadowWriteLayer::new(topology.clone())
            .with_sampling(0.0)
            .layer(pool),
    );
    group.bench_function("shard+shadow(0)+pool", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            once(&mut shadow_only, &keys[i]);
        })
    });
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
