//! CachedStore fails closed: it answers from memory only while its own
//! heartbeat comes back on the bus; a failed announcement, a silent
//! channel or a fill racing an announcement never leave a stale entry
//! served. Paused time.
#![cfg(feature = "cache")]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::doubles::{Counting, FaultyBus};
use foresight_store::{Beat, CachedStore, LocalBus, MemoryStore, SessionStore, Version};
use tokio::sync::Notify;
use tokio::time::sleep;

const SECOND: Duration = Duration::from_secs(1);

fn n(loaded: Option<foresight_store::Versioned<foresight_store::SessionData>>) -> i64 {
    loaded.unwrap().value.get::<i64>("n").unwrap().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_silent_channel_makes_reads_go_through_to_the_store() {
    let store = Counting::new(MemoryStore::new());
    let bus = FaultyBus::default();
    let cached = CachedStore::builder(store.clone())
        .with_bus(bus.clone())
        .build();
    common::trusted(&[&cached]).await;
    let id = cached
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    sleep(5 * SECOND).await;
    assert!(cached.is_trusted(), "heartbeats come back");
    for _ in 0..3 {
        cached.load(id).await.unwrap();
    }
    assert_eq!(store.loads(), 0, "all three served from memory");

    // Half-open: still "connected", but nothing arrives any more.
    bus.silent.store(true, Ordering::SeqCst);
    sleep(4 * SECOND).await;
    assert!(!cached.is_trusted());
    for _ in 0..3 {
        assert_eq!(n(cached.load(id).await.unwrap()), 1);
    }
    assert_eq!(store.loads(), 3, "every read went to the store");

    // Heartbeats return: the cache is trusted again and fills anew.
    bus.silent.store(false, Ordering::SeqCst);
    sleep(2 * SECOND).await;
    assert!(cached.is_trusted());
    cached.load(id).await.unwrap();
    cached.load(id).await.unwrap();
    assert_eq!(store.loads(), 4, "one fill, then a hit");
}

#[tokio::test(start_paused = true)]
async fn what_changed_while_the_channel_was_silent_is_not_served_after() {
    let store = MemoryStore::new();
    let bus = FaultyBus::default();
    let cached = CachedStore::builder(store.clone())
        .with_bus(bus.clone())
        .build();
    common::trusted(&[&cached]).await;
    let id = cached
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    assert_eq!(n(cached.load(id).await.unwrap()), 1);
    assert!(cached.is_cached(id));

    bus.silent.store(true, Ordering::SeqCst);
    // Another instance writes; its announcement is lost.
    store
        .save(id, &common::data(&[("n", 2)]), Version::FIRST)
        .await
        .unwrap();
    sleep(4 * SECOND).await;
    assert_eq!(
        n(cached.load(id).await.unwrap()),
        2,
        "read through while unproven"
    );

    bus.silent.store(false, Ordering::SeqCst);
    sleep(2 * SECOND).await;
    assert!(cached.is_trusted());
    assert_eq!(
        n(cached.load(id).await.unwrap()),
        2,
        "the entry cached before the silence was forgotten"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_announcement_leaves_no_stale_entry_served() {
    let store = MemoryStore::new();
    let local = LocalBus::new();
    let failing = FaultyBus {
        inner: local.clone(),
        ..FaultyBus::default()
    };
    // Bus-only consistency, opted out of acknowledged writes: a failed
    // announcement is not the writer's error (with acknowledged writes it
    // is: `acknowledged_writes.rs`).
    let writer = CachedStore::builder(store.clone())
        .with_bus(failing.clone())
        .with_acknowledged_writes(false)
        .build();
    // One reader checks versions, the other relies on the bus alone.
    let checked = CachedStore::builder(store.clone())
        .with_bus(local.clone())
        .with_acknowledged_writes(false)
        .with_version_check(true)
        .build();
    let id = writer
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    sleep(2 * SECOND).await;
    assert_eq!(n(checked.load(id).await.unwrap()), 1);
    assert!(checked.is_cached(id));

    failing.failing.store(true, Ordering::SeqCst);
    let v2 = writer
        .save(id, &common::data(&[("n", 2)]), Version::FIRST)
        .await
        .expect("the write stands: it is in the store");
    assert_eq!(v2, Version::new(2));
    // The writer cannot prove others heard of it: it stops answering from
    // memory and forgets the session.
    assert!(!writer.is_trusted());
    assert!(!writer.is_cached(id));
    assert_eq!(n(writer.load(id).await.unwrap()), 2);
    // A reader that checks versions sees the write at once.
    assert_eq!(n(checked.load(id).await.unwrap()), 2);

    // When the whole channel fails, a bus-only reader stops answering from
    // memory within the heartbeat timeout.
    let bus_only = CachedStore::builder(store.clone())
        .with_bus(failing.clone())
        .with_acknowledged_writes(false)
        .build();
    failing.failing.store(false, Ordering::SeqCst);
    sleep(2 * SECOND).await;
    assert_eq!(n(bus_only.load(id).await.unwrap()), 2);
    assert!(bus_only.is_cached(id));
    failing.failing.store(true, Ordering::SeqCst);
    store
        .save(id, &common::data(&[("n", 3)]), v2)
        .await
        .unwrap();
    sleep(4 * SECOND).await;
    assert!(!bus_only.is_trusted());
    assert_eq!(n(bus_only.load(id).await.unwrap()), 3);
}

/// A cache whose store reads wait: each read says `read` when it starts
/// and waits for `release` before it answers.
struct Gated {
    bus: LocalBus,
    shared: MemoryStore,
    read: Arc<Notify>,
    release: Arc<Notify>,
    reader: CachedStore<Counting<MemoryStore>>,
}

impl Gated {
    /// The reader (with the default settings), trusted.
    async fn new() -> Self {
        let bus = LocalBus::new();
        let shared = MemoryStore::new();
        let (read, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let mut gated = Counting::new(shared.clone());
        gated.hold = Some((read.clone(), release.clone()));
        let reader = CachedStore::builder(gated).with_bus(bus.clone()).build();
        common::trusted(&[&reader]).await;
        Self {
            bus,
            shared,
            read,
            release,
            reader,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_fill_racing_an_announcement_is_dropped() {
    let Gated {
        bus,
        shared,
        read,
        release,
        reader,
    } = Gated::new().await;
    let writer = CachedStore::builder(shared.clone()).with_bus(bus).build();
    common::trusted(&[&writer]).await;
    let id = writer
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();

    // The reader misses and reads version 1…
    let reader_load = tokio::spawn({
        let reader = reader.clone();
        async move { reader.load(id).await }
    });
    read.notified().await;
    // …the writer saves version 2 and its announcement arrives…
    writer
        .save(id, &common::data(&[("n", 2)]), Version::FIRST)
        .await
        .unwrap();
    sleep(Duration::from_millis(1)).await;
    // …then the reader's answer comes back: returned, but not cached.
    release.notify_one();
    assert_eq!(n(reader_load.await.unwrap().unwrap()), 1);
    assert!(!reader.is_cached(id), "a stale fill would serve version 1");
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_during_a_fill_does_not_drop_it() {
    use foresight_store::InvalidationBus;
    let Gated {
        bus,
        shared,
        read,
        release,
        reader,
    } = Gated::new().await;
    let id = shared
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();

    let reader_load = tokio::spawn({
        let reader = reader.clone();
        async move { reader.load(id).await }
    });
    read.notified().await;
    // Another instance's heartbeat arrives while the load is out: it says
    // nothing about the session.
    bus.heartbeat(Beat {
        origin: 0xfeed,
        seq: 1,
        acknowledges: false,
    })
    .await
    .unwrap();
    sleep(Duration::from_millis(1)).await;
    release.notify_one();
    assert_eq!(n(reader_load.await.unwrap().unwrap()), 1);
    assert!(reader.is_cached(id));
}

#[tokio::test(start_paused = true)]
async fn an_announcement_about_another_session_during_a_fill_does_not_drop_it() {
    let Gated {
        bus,
        shared,
        read,
        release,
        reader,
    } = Gated::new().await;
    let writer = CachedStore::builder(shared.clone()).with_bus(bus).build();
    common::trusted(&[&writer]).await;
    let id = shared
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    // Announcements are told apart by session in 1,024 stripes (the id's
    // low bits): the other session is one of another stripe.
    let other = loop {
        let other = writer
            .create(&common::data(&[("n", 1)]), common::expiry())
            .await
            .unwrap();
        if (other.as_u128() ^ id.as_u128()) % 1024 != 0 {
            break other;
        }
    };

    let reader_load = tokio::spawn({
        let reader = reader.clone();
        async move { reader.load(id).await }
    });
    read.notified().await;
    // Another session is written while the load is out: its announcement
    // says nothing about this one, which stays cacheable. (Under a write
    // load spread over many sessions, dropping such fills left the caches
    // mostly empty.)
    writer
        .save(other, &common::data(&[("n", 2)]), Version::FIRST)
        .await
        .unwrap();
    sleep(Duration::from_millis(1)).await;
    release.notify_one();
    assert_eq!(n(reader_load.await.unwrap().unwrap()), 1);
    assert!(reader.is_cached(id));
}

#[tokio::test(start_paused = true)]
async fn an_announcement_during_a_save_leaves_no_older_entry_behind() {
    use foresight_store::{Invalidation, InvalidationBus, SessionId};
    let bus = LocalBus::new();
    let (saved, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let mut gated = Counting::new(MemoryStore::new());
    gated.hold_saves = Some((saved.clone(), release.clone()));
    let owner = CachedStore::builder(gated).with_bus(bus.clone()).build();
    common::trusted(&[&owner]).await;
    let id = owner
        .create(&common::data(&[("n", 1)]), common::expiry())
        .await
        .unwrap();
    assert_eq!(n(owner.load(id).await.unwrap()), 1);
    assert!(owner.is_cached(id));

    let save = tokio::spawn({
        let owner = owner.clone();
        async move {
            owner
                .save(id, &common::data(&[("n", 2)]), Version::FIRST)
                .await
        }
    });
    saved.notified().await;
    // While the owner's save is out, another instance announces a write of
    // some other session.
    let elsewhere = Invalidation {
        origin: 7,
        id: SessionId::random(),
        version: Some(Version::new(3)),
    };
    bus.publish(elsewhere).await.unwrap();
    sleep(Duration::from_millis(1)).await;
    release.notify_one();
    assert_eq!(save.await.unwrap().unwrap(), Version::new(2));
    assert_eq!(
        n(owner.load(id).await.unwrap()),
        2,
        "the owner reads its own write"
    );
}
