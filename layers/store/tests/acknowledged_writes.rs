//! Acknowledged writes, in one process: a write returns only once every
//! other cache on the bus applied its announcement, or can no longer
//! answer from memory, so reads stay in memory and are never stale; a
//! write that cannot be announced is not acknowledged; a bus that does not
//! order heartbeats gets the version check. All of it is the default of
//! `CachedStore::builder`. Paused time.
#![cfg(feature = "cache")]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::doubles::{Counting, FaultyBus, Lagging};
use foresight_store::{
    Beat, BusEvent, Invalidation, InvalidationBus, StoreError, UnannouncedWrite,
};
use foresight_store::{
    CachedStore, LocalBus, MemoryStore, SessionData, SessionId, SessionStore, Version,
};
use tokio::sync::broadcast;
use tokio::time::{Instant, sleep};

const LEASE: Duration = Duration::from_secs(3);

fn n(loaded: Option<foresight_store::Versioned<SessionData>>) -> i64 {
    loaded.unwrap().value.get::<i64>("n").unwrap().unwrap()
}

fn cache(
    store: Counting<MemoryStore>,
    bus: FaultyBus,
    acknowledged: bool,
) -> CachedStore<Counting<MemoryStore>> {
    CachedStore::builder(store)
        .with_bus(bus)
        .with_acknowledged_writes(acknowledged)
        .build()
}

/// A and B on one bus (each through its own fault switch), both trusted
/// and known to each other; B holds `id` at version 1.
async fn a_and_b(
    acknowledged: bool,
) -> (
    CachedStore<Counting<MemoryStore>>,
    CachedStore<Counting<MemoryStore>>,
    FaultyBus,
    Counting<MemoryStore>,
    SessionId,
) {
    let store = Counting::new(MemoryStore::new());
    let shared = LocalBus::new();
    let bus_a = FaultyBus {
        inner: shared.clone(),
        ..FaultyBus::default()
    };
    let bus_b = FaultyBus {
        inner: shared,
        ..FaultyBus::default()
    };
    let a = cache(store.clone(), bus_a, acknowledged);
    let b = cache(store.clone(), bus_b.clone(), acknowledged);
    // A heartbeat each way.
    sleep(Duration::from_millis(1500)).await;
    assert!(a.is_trusted() && b.is_trusted());
    let id = a
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    assert_eq!(n(b.load(id).await.unwrap()), 1);
    assert!(b.is_cached(id));
    (a, b, bus_b, store, id)
}

/// The default builder, nothing opted in: B hears the bus 50 ms late, and
/// still reads A's write the moment A's save returns.
#[tokio::test(start_paused = true)]
async fn by_default_a_read_elsewhere_right_after_the_write_returns_sees_it() {
    let store = Counting::new(MemoryStore::new());
    let bus = LocalBus::new();
    let lag = Duration::from_millis(50);
    let a = CachedStore::builder(store.clone())
        .with_bus(bus.clone())
        .build();
    let b = CachedStore::builder(store.clone())
        .with_bus(Lagging {
            inner: bus,
            delay: lag,
        })
        .build();
    common::trusted(&[&a, &b]).await;
    // A heartbeat each way.
    sleep(Duration::from_millis(1100)).await;
    let id = a
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    assert_eq!(n(b.load(id).await.unwrap()), 1);
    assert!(b.is_cached(id));

    let start = Instant::now();
    a.save(id, &common::data(&[("n", 2)]), Version::FIRST)
        .await
        .unwrap();
    assert!(start.elapsed() >= lag, "the write did not wait for B");
    // No time passes on B's side before the read.
    let loads = store.loads();
    assert_eq!(n(b.load(id).await.unwrap()), 2, "B served its stale entry");
    assert_eq!(n(b.load(id).await.unwrap()), 2);
    assert_eq!(store.loads(), loads + 1, "one read through, then memory");
}

#[tokio::test(start_paused = true)]
async fn a_read_elsewhere_right_after_the_write_returns_sees_it() {
    let (a, b, _, store, id) = a_and_b(true).await;
    assert!(a.has_acknowledged_writes());
    a.save(id, &common::data(&[("n", 2)]), Version::FIRST)
        .await
        .unwrap();
    // No time passes on B's side before the read.
    let loads = store.loads();
    assert_eq!(n(b.load(id).await.unwrap()), 2, "B served its stale entry");
    assert_eq!(store.loads(), loads + 1, "B read the new version once");
    assert_eq!(n(b.load(id).await.unwrap()), 2);
    assert_eq!(store.loads(), loads + 1, "then from memory again");
}

#[tokio::test(start_paused = true)]
async fn without_acknowledgements_the_same_read_is_stale() {
    let (a, b, _, _, id) = a_and_b(false).await;
    a.save(id, &common::data(&[("n", 2)]), Version::FIRST)
        .await
        .unwrap();
    assert_eq!(n(b.load(id).await.unwrap()), 1);
}

#[tokio::test(start_paused = true)]
async fn a_deletion_elsewhere_is_seen_at_once() {
    let (a, b, _, _, id) = a_and_b(true).await;
    assert!(a.delete(id, None).await.unwrap());
    assert!(
        b.load(id).await.unwrap().is_none(),
        "B served a deleted session"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deaf_peer_holds_a_write_back_until_its_lease_ends_and_then_reads_through() {
    let (a, b, bus_b, store, id) = a_and_b(true).await;
    // B's messages stop reaching anyone: no more heartbeats, no
    // acknowledgements. B keeps its entry at version 1.
    bus_b.silent.store(true, Ordering::SeqCst);
    let start = Instant::now();
    a.save(id, &common::data(&[("n", 2)]), Version::FIRST)
        .await
        .unwrap();
    let held = start.elapsed();
    assert!(held > Duration::ZERO, "the write did not wait for B");
    assert!(
        held <= LEASE + LEASE / 50,
        "waited {held:?}, longer than B's lease"
    );
    // B can no longer vouch for its entry: the read goes to the store.
    let loads = store.loads();
    assert!(!b.is_trusted());
    assert_eq!(n(b.load(id).await.unwrap()), 2);
    assert_eq!(store.loads(), loads + 1);
}

#[tokio::test(start_paused = true)]
async fn a_cache_alone_on_its_bus_writes_without_waiting() {
    let store = Counting::new(MemoryStore::new());
    let a = cache(store, FaultyBus::default(), true);
    sleep(Duration::from_millis(1500)).await;
    let id = a
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    let start = Instant::now();
    a.save(id, &common::data(&[("n", 2)]), Version::FIRST)
        .await
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(10),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_cache_answers_from_memory_only_after_its_own_heartbeat() {
    let store = Counting::new(MemoryStore::new());
    let bus = FaultyBus::default();
    bus.silent.store(true, Ordering::SeqCst);
    let a = cache(store, bus.clone(), true);
    // The bus says connected, but until a heartbeat of A came back, other
    // writers may not know A: A must not vouch for anything.
    assert!(!a.is_trusted());
    sleep(Duration::from_secs(2)).await;
    assert!(!a.is_trusted());
    bus.silent.store(false, Ordering::SeqCst);
    sleep(Duration::from_millis(1100)).await;
    assert!(a.is_trusted());
}

#[tokio::test(start_paused = true)]
async fn a_write_that_cannot_be_announced_is_not_acknowledged() {
    let store = MemoryStore::new();
    let bus = FaultyBus::default();
    // The default builder.
    let cached = CachedStore::builder(store.clone())
        .with_bus(bus.clone())
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
async fn without_a_bus_the_default_cache_checks_versions() {
    let store = Counting::new(MemoryStore::new());
    let cached = CachedStore::new(store.clone());
    assert!(!cached.has_acknowledged_writes());
    let id = cached
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    assert!(cached.is_cached(id));
    // Another writer, behind the cache's back.
    store
        .save(id, &common::data(&[("n", 7)]), Version::FIRST)
        .await
        .unwrap();
    assert_eq!(n(cached.load(id).await.unwrap()), 7);

    // Opted out, the cache is right for a single writer only.
    let single_writer = CachedStore::builder(store.clone())
        .with_acknowledged_writes(false)
        .build();
    let id = single_writer
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    store
        .save(id, &common::data(&[("n", 7)]), Version::FIRST)
        .await
        .unwrap();
    assert_eq!(n(single_writer.load(id).await.unwrap()), 1);
}

/// A bus whose messages may overtake each other: it says so.
#[derive(Debug, Default)]
struct Unordered(LocalBus);

impl InvalidationBus for Unordered {
    fn publish(&self, invalidation: Invalidation) -> foresight_store::StoreFuture<'_, ()> {
        self.0.publish(invalidation)
    }

    fn heartbeat(&self, beat: Beat) -> foresight_store::StoreFuture<'_, ()> {
        self.0.heartbeat(beat)
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
    // The default builder.
    let cached = CachedStore::builder(store.clone())
        .with_bus(Unordered::default())
        .build();
    assert!(!cached.has_acknowledged_writes());
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
