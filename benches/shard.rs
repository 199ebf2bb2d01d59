//! Rendezvous ranking beside other consistent-hashing schemes, and the
//! per-request cost of ShardLayer + Pool beside calling the instance service
//! directly.
//!
//! `cargo bench --bench shard`; the results table is in `benches/README.md`.

use std::convert::Infallible;
use std::hash::BuildHasher;
use std::task::{Context, Poll, Waker};

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use foresight::core::key::HeaderKey;
use foresight::core::{ClientKey, InstanceSpec, Pool, Topology};
use foresight::shard::ShardLayer;
use hashring::HashRing;
use hrw_hash::HrwNodes;
use http::{Request, Response};
use std::hint::black_box;
use tower::{Layer, Service, service_fn};

const SIZES: [usize; 4] = [3, 16, 256, 4096];
const VIRTUAL_NODES: usize = 160;

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("instance-{i}")).collect()
}

fn keys() -> Vec<String> {
    (0..1024).map(|i| format!("session-{i:08}")).collect()
}

#[derive(Hash, Clone, Debug, PartialEq, Eq)]
struct VirtualNode {
    instance: u32,
    replica: u32,
}

fn ketama(n: usize) -> HashRing<VirtualNode> {
    let mut ring = HashRing::new();
    ring.batch_add(
        (0..n as u32)
            .flat_map(|instance| {
                (0..VIRTUAL_NODES as u32).map(move |replica| VirtualNode { instance, replica })
            })
            .collect(),
    );
    ring
}

/// Jump consistent hash (Lamping and Veach, 2014). A few lines with no
/// maintained crate that exposes the bare function; a baseline only.
fn jump(mut key: u64, buckets: u32) -> u32 {
    let (mut b, mut j) = (-1i64, 0i64);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

/// max/mean of the exact key shares of a ketama ring, from its arcs.
fn ketama_max_over_mean(n: usize) -> f64 {
    let hasher = hashring::DefaultHashBuilder;
    let mut points: Vec<(u64, u32)> = (0..n as u32)
        .flat_map(|instance| {
            (0..VIRTUAL_NODES as u32).map(move |replica| VirtualNode { instance, replica })
        })
        .map(|v| (hasher.hash_one(&v), v.instance))
        .collect();
    points.sort_unstable();
    let mut share = vec![0f64; n];
    for (i, &(position, instance)) in points.iter().enumerate() {
        // A point owns the keys hashing after its predecessor, up to itself.
        let previous = if i == 0 {
            points[points.len() - 1].0
        } else {
            points[i - 1].0
        };
        share[instance as usize] += position.wrapping_sub(previous) as f64;
    }
    let total: f64 = share.iter().sum();
    share.iter().cloned().fold(0.0, f64::max) / (total / n as f64)
}

fn foresight_max_over_mean(n: usize) -> f64 {
    let topology = Topology::from_instances(names(n).into_iter().map(InstanceSpec::new)).unwrap();
    let members = topology.load();
    let max = members
        .iter()
        .map(|i| members.share(i.id()).unwrap())
        .fold(0.0, f64::max);
    max * n as f64
}

fn ranking(c: &mut Criterion) {
    for n in SIZES {
        println!(
            "balance n={n}: max/mean share foresight {:.4}, ketama(160 vnodes) {:.4}",
            foresight_max_over_mean(n),
            ketama_max_over_mean(n)
        );
    }
    let keys = keys();
    let client_keys: Vec<ClientKey> = keys.iter().map(|k| ClientKey::from(k.as_str())).collect();
    for k in [1usize, 2] {
        let mut group = c.benchmark_group(format!("rank_top{k}"));
        for n in SIZES {
            let topology =
                Topology::from_instances(names(n).into_iter().map(InstanceSpec::new)).unwrap();
            // Held like the other structures are: a snapshot, ranked by
            // reference (the ShardLayer's own lookup is in `per_request`).
            let members = topology.snapshot();
            let mut i = 0usize;
            group.bench_function(BenchmarkId::new("foresight", n), |b| {
                b.iter(|| {
                    i = (i + 1) & 1023;
                    let hash = client_keys[i].hash_with_seed(0);
                    black_box(members.top(hash, k).count())
                })
            });
            if n <= 256 {
                let hrw = HrwNodes::new(names(n));
                group.bench_function(BenchmarkId::new("hrw-hash", n), |b| {
                    b.iter(|| {
                        i = (i + 1) & 1023;
                        black_box(hrw.sorted(&keys[i]).take(k).count())
                    })
                });
            }
            let ring = ketama(n);
            group.bench_function(BenchmarkId::new("ketama-get", n), |b| {
                b.iter(|| {
                    i = (i + 1) & 1023;
                    black_box(ring.get(&keys[i]).map(|v| v.instance))
                })
            });
            if k == 1 {
                group.bench_function(BenchmarkId::new("jump", n), |b| {
                    b.iter(|| {
                        i = (i + 1) & 1023;
                        let hash = client_keys[i].hash_with_seed(0);
                        black_box(jump(hash, n as u32))
                    })
                });
            }
        }
        group.finish();
    }
}

/// Polls a future that is expected to be ready at once (in-process services).
fn ready_now<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("in-process service was not ready"),
    }
}

fn instance_service() -> impl Service<
    Request<()>,
    Response = Response<()>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<()>, Infallible>>,
> + Clone {
    service_fn(|_req: Request<()>| std::future::ready(Ok::<_, Infallible>(Response::new(()))))
}

fn request() -> Request<()> {
    Request::builder()
        .uri("/profile")
        .header("x-session", "session-0000042")
        .body(())
        .unwrap()
}

fn stack(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_request");
    let mut direct = instance_service();
    group.bench_function("instance_direct", |b| {
        b.iter_batched(
            request,
            |req| {
                ready_now(std::future::poll_fn(|cx| direct.poll_ready(cx))).unwrap();
                black_box(ready_now(direct.call(req)))
            },
            BatchSize::SmallInput,
        )
    });
    for n in [3usize, 16] {
        let topology =
            Topology::from_instances(names(n).into_iter().map(InstanceSpec::new)).unwrap();
        let pool = Pool::new(topology.clone(), |_| instance_service());
        let mut routed = ShardLayer::new(topology, HeaderKey::new("x-session")).layer(pool);
        group.bench_function(BenchmarkId::new("shard_pool", n), |b| {
            b.iter_batched(
                request,
                |req| {
                    ready_now(std::future::poll_fn(|cx| routed.poll_ready(cx))).unwrap();
                    black_box(ready_now(routed.call(req)))
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = ranking, stack
}
criterion_main!(benches);
