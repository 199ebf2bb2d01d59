//! The cached read path of `CachedStore<EtcdStore>` and
//! `CachedStore<RedisStore>`, side by side in one run: a `load` of a
//! session that is in the cache, each cache trusted through its bus (an
//! etcd watch, Redis pub/sub), over a local 3-member etcd cluster and a
//! local redis-server started for the run. With the version check, each
//! hit also reads the session's version from the store (a linearizable
//! read on etcd, `HMGET` on Redis). For scale, the stores alone: an
//! uncached `load`, and a `save` (compare-and-set) of a session.
//!
//! ```text
//! cargo bench -p foresight-store --features etcd,redis,cache --bench cached_read
//! ```

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use foresight_store::{
    CachedStore, EtcdStore, Expiry, RedisStore, SessionData, SessionId, SessionStore,
};
use foresight_testkit::{EtcdCluster, RedisServer};
use tokio::runtime::Runtime;

async fn cached_session<S: SessionStore + Clone>(store: &CachedStore<S>) -> SessionId {
    let mut data = SessionData::new();
    data.insert("user", "alice").unwrap();
    data.insert("cart", &[1, 2, 3]).unwrap();
    let id = store.create(&data, Expiry::default()).await.unwrap();
    store.load(id).await.unwrap().unwrap();
    id
}

fn cached_read(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let Some(cluster) = EtcdCluster::start() else {
        return;
    };
    let redis = RedisServer::start();
    let (etcd, redis_store) = rt.block_on(async {
        let etcd = EtcdStore::connect(cluster.endpoints()).await.unwrap();
        let etcd_bus = etcd.invalidation_bus();
        assert!(etcd_bus.wait_connected(Duration::from_secs(10)).await);
        let redis_store = RedisStore::standalone(&redis.url()).unwrap();
        let redis_bus = redis_store.invalidation_bus();
        assert!(redis_bus.wait_connected(Duration::from_secs(10)).await);
        // Bus-only consistency on both, so that a hit is answered from
        // memory on either (the default checks versions on etcd, whose
        // watch does not order heartbeats); the version check is measured
        // below.
        (
            CachedStore::builder(etcd)
                .with_bus(etcd_bus)
                .with_acknowledged_writes(false)
                .build(),
            CachedStore::builder(redis_store)
                .with_bus(redis_bus)
                .with_acknowledged_writes(false)
                .build(),
        )
    });
    let (etcd_id, redis_id) = rt.block_on(async {
        (
            cached_session(&etcd).await,
            cached_session(&redis_store).await,
        )
    });

    let mut group = c.benchmark_group("cached_read");
    group.bench_function("etcd", |b| {
        b.to_async(&rt).iter(|| async {
            assert!(etcd.load(etcd_id).await.unwrap().is_some());
        })
    });
    group.bench_function("redis", |b| {
        b.to_async(&rt).iter(|| async {
            assert!(redis_store.load(redis_id).await.unwrap().is_some());
        })
    });
    let etcd_checked = etcd.clone().with_version_check(true);
    let redis_checked = redis_store.clone().with_version_check(true);
    group.bench_function("etcd_version_check", |b| {
        b.to_async(&rt).iter(|| async {
            assert!(etcd_checked.load(etcd_id).await.unwrap().is_some());
        })
    });
    group.bench_function("redis_version_check", |b| {
        b.to_async(&rt).iter(|| async {
            assert!(redis_checked.load(redis_id).await.unwrap().is_some());
        })
    });
    group.finish();
    // Every read above was a hit.
    assert!(etcd.is_cached(etcd_id) && redis_store.is_cached(redis_id));

    let mut group = c.benchmark_group("store");
    let (etcd_raw, redis_raw) = (etcd.get_ref().clone(), redis_store.get_ref().clone());
    group.bench_function("etcd_load", |b| {
        b.to_async(&rt).iter(|| async {
            assert!(etcd_raw.load(etcd_id).await.unwrap().is_some());
        })
    });
    group.bench_function("redis_load", |b| {
        b.to_async(&rt).iter(|| async {
            assert!(redis_raw.load(redis_id).await.unwrap().is_some());
        })
    });
    group.bench_function("etcd_save", |b| {
        b.to_async(&rt).iter(|| async {
            let loaded = etcd_raw.load(etcd_id).await.unwrap().unwrap();
            etcd_raw
                .save(etcd_id, &loaded.value, loaded.version)
                .await
                .unwrap();
        })
    });
    group.bench_function("redis_save", |b| {
        b.to_async(&rt).iter(|| async {
            let loaded = redis_raw.load(redis_id).await.unwrap().unwrap();
            redis_raw
                .save(redis_id, &loaded.value, loaded.version)
                .await
                .unwrap();
        })
    });
    group.finish();
    drop((cluster, redis));
}

criterion_group!(benches, cached_read);
criterion_main!(benches);
