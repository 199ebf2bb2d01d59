//! Per-request cost of ShadowWriteLayer under the default policy, against
//! the layer with shadowing off (sampling 0), behind Shard and in front of
//! in-process instances that answer at once.
//!
//! With the default policy, a session's GETs are copied once per 30 s: the
//! bench first warms all 1,024 sessions, so what it measures is the steady
//! state, a coalesced read (the policy's decision and one lookup in the
//! coalescing map). A POST is skipped by the policy (no instance is
//! shadow-aware).
//!
//! `cargo bench -p foresight-shadow --bench policy`

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use foresight_core::key::HeaderKey;
use foresight_core::{InstanceSpec, Pool, RouteBody, Topology};
use foresight_shadow::ShadowWriteLayer;
use foresight_shard::ShardLayer;
use http::{HeaderValue, Method, Request, Response};
use http_body_util::Empty;
use tower::{Layer, Service, service_fn};

fn keys() -> Vec<HeaderValue> {
    (0..1024)
        .map(|i| HeaderValue::from_str(&format!("account-{i}")).unwrap())
        .collect()
}

/// Readies `service`, calls it and polls the response once: every layer and
/// instance answers at once, so one poll completes the request.
fn call<S>(service: &mut S, key: &HeaderValue, method: &Method)
where
    S: Service<Request<Empty<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_ready());
    let mut request = Request::new(Empty::new());
    *request.method_mut() = method.clone();
    request.headers_mut().insert("x-account-id", key.clone());
    let future = pin!(service.call(request));
    match future.poll(&mut cx) {
        Poll::Ready(result) => {
            black_box(result.unwrap());
        }
        Poll::Pending => panic!("the bench stack must answer at once"),
    }
}

fn stack(
    shadow: impl Fn(Topology) -> ShadowWriteLayer,
) -> (
    impl Service<Request<Empty<Bytes>>, Error = impl std::fmt::Debug>,
    ShadowWriteLayer,
) {
    let topology =
        Topology::from_instances((0..8).map(|i| InstanceSpec::new(format!("i{i}")))).unwrap();
    let pool = Pool::new(topology.clone(), |_| {
        service_fn(|_req: Request<RouteBody>| async {
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        })
    });
    let shadow = shadow(topology.clone());
    let service =
        ShardLayer::new(topology, HeaderKey::new("x-account-id")).layer(shadow.layer(pool));
    (service, shadow)
}

fn overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let keys = keys();
    let mut group = c.benchmark_group("shadow_per_request");
    let cases = [
        ("off (sampling 0), GET", Method::GET, false),
        ("default policy, GET (coalesced)", Method::GET, true),
        ("off (sampling 0), POST", Method::POST, false),
        ("default policy, POST (skipped)", Method::POST, true),
    ];
    for (name, method, on) in cases {
        let (mut service, shadow) = stack(|topology| {
            let layer = ShadowWriteLayer::new(topology);
            if on { layer } else { layer.with_sampling(0.0) }
        });
        // Warm every session once, and let the copies finish.
        for key in &keys {
            call(&mut service, key, &method);
        }
        runtime.block_on(async {
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
        });
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % keys.len();
                call(&mut service, &keys[i], &method);
            })
        });
        println!("{name}: {:?}", shadow.stats());
    }
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
