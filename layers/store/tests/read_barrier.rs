//! The read barrier of CachedStore, in one process: a read waits until a
//! heartbeat sent after it began has come back, so an announcement already
//! published is applied first; writes are acknowledged only once
//! announced; a bus that does not order heartbeats gets the version check.
#![cfg(feature = "cache")]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::doubles::{Counting, FaultyBus};
use foresight_store::{
    BusEvent, CachedStore, Invalidation, InvalidationBus, LocalBus, MemoryStore, SessionData,
    SessionStore, StoreError, UnannouncedWrite, Version,
};
use tokio::sync::broadcast;

fn n(loaded: Option<foresight_store::Versioned<SessionData>>) -> i64 {
    loaded.unwrap().value.get::<i64>("n").unwrap().unwrap()
}

/// A, a plain cache, and B, holding `id` at version 1, on one in-process
/// bus. A single-threaded runtime: B's listener has not run when A's save
/// returns, so only something that waits for it can see A's write.
async fn a_and_b(
    barrier: bool,
) -> (
    CachedStore<MemoryStore>,
    CachedStore<MemoryStore>,
    foresight_store::SessionId,
) {
    let shared = MemoryStore::new();
    let bus = LocalBus::new();
    let a = CachedStore::builder(shared.clone())
        .with_bus(bus.clone())
        .with_read_barrier(barrier)
        .build();
    let b = CachedStore::builder(shared)
        .with_bus(bus)
        .with_read_barrier(barrier)
        .build();
    let id = a
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    assert_eq!(n(b.load(id).await.unwrap()), 1);
    assert!(b.is_cached(id));
    (a, b, id)
}

#[tokio::test(flavor = "current_thread")]
async fn a_read_after_an_acknowledged_write_elsewhere_sees_it() {
    let (a, b, id) = a_and_b(true).await;
    assert!(b.has_read_barrier());
    a.save(id, &common::data(&[("n", 2)]), Version::FIRST)
        .await
        .unwrap();
    assert_eq!(n(b.load(id).await.unwrap()), 2, "B served its stale entry");
    // And the fresh copy is cached again: the next read is a hit.
    assert_eq!(n(b.load(id).await.unwrap()), 2);
    assert!(b.is_cached(id));
}

#[tokio::test(flavor = "current_thread")]
async fn without_the_barrier_the_same_read_is_stale() {
    // What the barrier is for: the same sequence with announcements alone.
    let (a, b, id) = a_and_b(false).await;
    a.save(id, &common::data(&[("n", 2)]), Version::FIRST)
        .await
        .unwrap();
    assert_eq!(n(b.load(id).await.unwrap()), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_deletion_elsewhere_is_seen_at_once() {
    let (a, b, id) = a_and_b(true).await;
    assert!(a.delete(id, None).await.unwrap());
    assert!(
        b.load(id).await.unwrap().is_none(),
        "B served a deleted session"
    );
}

#[tokio::test(start_paused = true)]
async fn a_write_that_cannot_be_announced_is_not_acknowledged() {
    let store = MemoryStore::new();
    let bus = FaultyBus::default();
    let cached = CachedStore::builder(store.clone())
        .with_bus(bus.clone())
        .with_read_barrier(true)
        .build();
    let id = cached
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    bus.failing.store(true, Ordering::SeqCst);
    let err = cached
        .save(id, &common::data(&[("n", 2)]), Version::FIRST)
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let unannounced = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<UnannouncedWrite>())
        .expect("the cause says the write was not announced");
    assert_eq!(unannounced.version, Some(Version::FIRST.next()));
    // Applied all the same: the outcome was unknown, not a failure.
    assert_eq!(n(store.load(id).await.unwrap()), 2);
    let err = cached.delete(id, None).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable { .. }),
        "a deletion is not acknowledged either: {err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_barrier_that_does_not_come_back_sends_reads_to_the_store() {
    let store = Counting::new(MemoryStore::new());
    let bus = FaultyBus::default();
    let cached = CachedStore::builder(store.clone())
        .with_bus(bus.clone())
        .with_read_barrier(true)
        .build();
    let id = cached
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    cached.load(id).await.unwrap();
    cached.load(id).await.unwrap();
    assert_eq!(store.loads(), 0, "served from memory after each barrier");
    // Half-open: publishes succeed, nothing comes back.
    bus.silent.store(true, Ordering::SeqCst);
    assert_eq!(n(cached.load(id).await.unwrap()), 1);
    assert_eq!(store.loads(), 1, "the read went to the store");
}

/// A bus whose messages may overtake each other: it says so.
#[derive(Debug, Default)]
struct Unordered(LocalBus);

impl InvalidationBus for Unordered {
    fn publish(&self, invalidation: Invalidation) -> foresight_store::StoreFuture<'_, ()> {
        self.0.publish(invalidation)
    }

    fn heartbeat(&self, origin: u64, seq: u64) -> foresight_store::StoreFuture<'_, ()> {
        self.0.heartbeat(origin, seq)
    }

    fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.0.subscribe()
    }

    fn is_connected(&self) -> bool {
        true
    }
}

#[tokio::test(start_paused = true)]
async fn on_a_bus_that_does_not_order_heartbeats_the_cache_checks_versions() {
    let store = Counting::new(MemoryStore::new());
    let cached = CachedStore::builder(store.clone())
        .with_bus(Unordered::default())
        .with_read_barrier(true)
        .build();
    assert!(!cached.has_read_barrier());
    let id = cached
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    // A write behind the cache's back: only a version check notices it.
    store
        .save(id, &common::data(&[("n", 7)]), Version::FIRST)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(n(cached.load(id).await.unwrap()), 7);
}
