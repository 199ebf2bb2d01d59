//! Read-your-writes across instances: two CachedStores over one Redis, a
//! write acknowledged on A, then at once a read on B that holds the
//! previous version in its cache. With the version check, and with
//! acknowledged writes (the default on one Redis server), B returns the
//! write every time.
#![cfg(all(feature = "redis", feature = "cache"))]

mod common;

use std::time::Duration;

use foresight_store::{CachedStore, RedisStore};
use foresight_testkit::RedisServer;

const PAIRS: i64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_a_is_read_on_b_every_time() {
    let server = RedisServer::start();
    let redis = RedisStore::standalone(&server.url()).unwrap();
    let (bus_a, bus_b) = (redis.invalidation_bus(), redis.invalidation_bus());
    assert!(bus_a.wait_connected(Duration::from_secs(10)).await);
    assert!(bus_b.wait_connected(Duration::from_secs(10)).await);
    // The version check alone: both opt out of acknowledged writes.
    let a = CachedStore::builder(redis.clone())
        .with_bus(bus_a.clone())
        .with_acknowledged_writes(false)
        .build();
    let b = CachedStore::builder(redis.clone())
        .with_bus(bus_b.clone())
        .with_acknowledged_writes(false)
        .with_version_check(true)
        .build();
    let stale = common::stale_reads(PAIRS, &a, &b).await;
    assert_eq!(
        stale, 0,
        "stale reads out of {PAIRS} with the version check"
    );

    // The defaults on both, acknowledged writes: every hit from memory, the
    // same guarantee.
    let a_acked = CachedStore::builder(redis.clone())
        .with_bus(bus_a.clone())
        .build();
    let b_acked = CachedStore::builder(redis.clone())
        .with_bus(bus_b.clone())
        .build();
    assert!(a_acked.has_acknowledged_writes() && b_acked.has_acknowledged_writes());
    // Each has seen a heartbeat of its own come back, so each is trusted
    // (and, a heartbeat later, known to the other).
    for _ in 0..200 {
        if a_acked.is_trusted() && b_acked.is_trusted() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(a_acked.is_trusted() && b_acked.is_trusted());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stale = common::stale_reads(PAIRS, &a_acked, &b_acked).await;
    assert_eq!(
        stale, 0,
        "stale reads out of {PAIRS} with acknowledged writes"
    );

    // For the record, not a claim: the same pairs with announcements alone.
    let b_bus_only = CachedStore::builder(redis.clone())
        .with_bus(bus_b)
        .with_acknowledged_writes(false)
        .build();
    let stale = common::stale_reads(PAIRS, &a, &b_bus_only).await;
    eprintln!("announcements alone: {stale} stale reads out of {PAIRS}");
}
