//! Read-your-writes across instances on etcd: two `CachedStore<EtcdStore>`
//! with their own etcd clients over one 3-member cluster. A write
//! acknowledged on A, then at once a read on B, which holds the previous
//! version in its cache: with the version check (a linearizable read of
//! the session; the default on etcd, whose watch does not order
//! heartbeats) B returns the write every time.
#![cfg(all(feature = "etcd", feature = "cache"))]

mod common;

use std::time::Duration;

use foresight_store::{CachedStore, EtcdStore, SessionStore, Version};
use foresight_testkit::EtcdCluster;

const PAIRS: i64 = 1000;

/// A cached instance: the defaults, or bus-only consistency (the watch
/// alone).
async fn instance(cluster: &EtcdCluster, bus_only: bool) -> CachedStore<EtcdStore> {
    let store = EtcdStore::connect(cluster.endpoints()).await.unwrap();
    let bus = store.invalidation_bus();
    assert!(bus.wait_connected(Duration::from_secs(10)).await);
    CachedStore::builder(store)
        .with_bus(bus)
        .with_acknowledged_writes(!bus_only)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_a_is_read_on_b_every_time() {
    let Some(cluster) = tokio::task::spawn_blocking(EtcdCluster::start)
        .await
        .unwrap()
    else {
        return;
    };
    let a = instance(&cluster, false).await;
    let b = instance(&cluster, false).await;
    let stale = common::stale_reads(PAIRS, &a, &b).await;
    assert_eq!(
        stale, 0,
        "stale reads out of {PAIRS} with the version check"
    );

    // For the record, not a claim: the same pairs with the watch alone.
    let b_watch_only = instance(&cluster, true).await;
    let stale = common::stale_reads(PAIRS, &a, &b_watch_only).await;
    eprintln!("watch alone: {stale} stale reads out of {PAIRS}");
}

/// A frozen etcd member under B's watch: B stops answering from memory
/// (its heartbeat, a progress notification, no longer comes back), so a
/// read on B goes to the store, which fails while B's only member is
/// frozen, instead of serving a copy that may be stale; when the member
/// resumes, B trusts its cache again and sees A's next write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_watch_makes_the_cache_read_through() {
    let Some(mut cluster) = tokio::task::spawn_blocking(EtcdCluster::start)
        .await
        .unwrap()
    else {
        return;
    };
    let a = instance(&cluster, false).await;
    // B talks to one member only, so that its watch lives there.
    let store = EtcdStore::connect([cluster.endpoint(0)]).await.unwrap();
    let bus = store.invalidation_bus();
    assert!(bus.wait_connected(Duration::from_secs(10)).await);
    // On the watch alone (bus-only consistency), so that what B reads
    // below shows what the watch delivered.
    let b = CachedStore::builder(store)
        .with_bus(bus)
        .with_heartbeat(Duration::from_millis(100), Duration::from_millis(400))
        .with_acknowledged_writes(false)
        .build();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(b.is_trusted());

    let id = a
        .create(&common::data(&[("n", 0)]), common::expiry())
        .await
        .unwrap();
    // A fill is dropped when any watch event (here A's create itself) lands
    // while it runs, so B may need a second read before it holds the copy.
    let mut cached = false;
    for _ in 0..50 {
        b.load(id).await.unwrap().unwrap();
        cached = b.is_cached(id);
        if cached {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        cached,
        "B never cached the session while its watch was live"
    );

    cluster.stop(0);
    let mut trusted = true;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trusted = b.is_trusted();
        if !trusted {
            break;
        }
    }
    assert!(!trusted, "B still trusts a watch that hears nothing");
    let err = b.load(id).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    cluster.cont(0);
    let mut trusted = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trusted = b.is_trusted();
        if trusted {
            break;
        }
    }
    assert!(trusted, "B never trusted its cache again");
    let v = a
        .save(id, &common::data(&[("n", 1)]), Version::FIRST)
        .await
        .unwrap();
    assert_eq!(v, Version::new(2));
    let read = b.load(id).await.unwrap().unwrap();
    assert_eq!(read.version, v);
}
