//! CachedStore across instances: after a session is written elsewhere, the
//! old owner's cache neither serves nor saves the stale version.
#![cfg(all(feature = "redis", feature = "cache"))]

mod common;

use std::time::Duration;

use foresight_store::{CachedStore, RedisStore, SessionStore, StoreError};
use foresight_testkit::RedisServer;

async fn eventually(mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..500 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_session_is_invalidated_on_the_old_owner() {
    let server = RedisServer::start();
    let redis = RedisStore::standalone(&server.url()).unwrap();
    let bus_a = redis.invalidation_bus();
    let bus_b = redis.invalidation_bus();
    assert!(bus_a.wait_connected(Duration::from_secs(10)).await);
    assert!(bus_b.wait_connected(Duration::from_secs(10)).await);
    let a = CachedStore::builder(redis.clone()).with_bus(bus_a).build();
    let b = CachedStore::builder(redis.clone()).with_bus(bus_b).build();
    common::trusted(&[&a, &b]).await;

    // A owns the session and caches it.
    let id = a
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    let stale = a.load(id).await.unwrap().unwrap();
    assert!(a.is_cached(id));

    // The session moves to B, which writes it.
    let on_b = b.load(id).await.unwrap().unwrap();
    b.save(id, &common::data(&[("n", 2)]), on_b.version)
        .await
        .unwrap();

    // A's entry is dropped by the announcement…
    eventually(async || !a.is_cached(id)).await;
    let fresh = a.load(id).await.unwrap().unwrap();
    assert_eq!(fresh.value.get::<i64>("n").unwrap(), Some(2));
    // …and a save from A's stale copy is refused, not applied.
    let err = a
        .save(id, &common::data(&[("n", 99)]), stale.version)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }));
    let stored = redis.load(id).await.unwrap().unwrap();
    assert_eq!(stored.value.get::<i64>("n").unwrap(), Some(2));

    // A deletion elsewhere is announced too.
    let on_a = a.load(id).await.unwrap().unwrap();
    assert!(a.is_cached(id));
    assert!(b.delete(id, Some(on_a.version)).await.unwrap());
    eventually(async || !a.is_cached(id)).await;
    assert_eq!(a.load(id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_is_bypassed_while_the_bus_is_down_and_reset_after() {
    let mut server = RedisServer::start();
    let redis = RedisStore::standalone(&server.url())
        .unwrap()
        .with_op_timeout(Duration::from_millis(300));
    let bus = redis.invalidation_bus();
    assert!(bus.wait_connected(Duration::from_secs(10)).await);
    let cached = CachedStore::builder(redis.clone())
        .with_bus(bus.clone())
        .build();
    common::trusted(&[&cached]).await;
    let id = cached
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    assert!(cached.load(id).await.is_ok());
    assert!(cached.is_cached(id));

    server.kill();
    eventually(async || !foresight_store::InvalidationBus::is_connected(&bus)).await;
    // No answer from memory while announcements cannot arrive.
    let err = cached.load(id).await.unwrap_err();
    assert!(err.is_unavailable());
    assert!(!cached.is_cached(id));

    let server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    assert!(bus.wait_connected(Duration::from_secs(10)).await);
    // The restarted server kept nothing: the session is gone, not served
    // from a stale cache.
    eventually(async || matches!(cached.load(id).await, Ok(None))).await;
    drop(server);
}
