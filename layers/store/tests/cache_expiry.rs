//! CachedStore never serves a session past its idle or absolute expiry in
//! the store behind it, with paused time.
#![cfg(feature = "cache")]

mod common;

use std::time::Duration;

use common::doubles::Counting;
use foresight_store::{CachedStore, Expiry, MemoryStore, SessionStore};
use tokio::time::advance;

const SECOND: Duration = Duration::from_secs(1);

/// A cache for a single writer, that answers hits unchecked: what these
/// tests look at is its own expiry. (The default, without a bus, checks
/// each hit's version, and an expired session has none, which would hide
/// a cache serving past the expiry.)
fn unchecked<S: SessionStore>(store: S) -> CachedStore<S> {
    CachedStore::builder(store)
        .with_acknowledged_writes(false)
        .build()
}

#[tokio::test(start_paused = true)]
async fn an_idle_expired_session_is_a_miss_and_is_evicted() {
    let store = Counting::new(MemoryStore::new());
    let cached = unchecked(store.clone());
    let id = cached
        .create(
            &common::data(&[("n", 1)]),
            Expiry::new(10 * SECOND, 100 * SECOND),
        )
        .await
        .unwrap();
    advance(9 * SECOND).await;
    assert!(cached.load(id).await.unwrap().is_some(), "alive at T-1s");
    assert_eq!(store.loads(), 0, "served from the cache");
    advance(2 * SECOND).await;
    assert_eq!(cached.load(id).await.unwrap(), None, "expired at T+1s");
    assert_eq!(store.loads(), 1, "the expired entry was a miss");
    assert!(!cached.is_cached(id), "and was evicted");
}

#[tokio::test(start_paused = true)]
async fn an_absolutely_expired_session_is_a_miss_though_touched() {
    let store = Counting::new(MemoryStore::new());
    let cached = unchecked(store.clone());
    let id = cached
        .create(
            &common::data(&[("n", 1)]),
            Expiry::new(5 * SECOND, 12 * SECOND),
        )
        .await
        .unwrap();
    // Touches keep the idle timer running…
    for _ in 0..2 {
        advance(4 * SECOND).await;
        assert!(cached.touch(id, 5 * SECOND).await.unwrap());
    }
    // …the entry, cached again at t = 8 s, lives to the absolute deadline…
    assert!(cached.load(id).await.unwrap().is_some());
    let loads = store.loads();
    advance(3 * SECOND).await;
    assert!(cached.load(id).await.unwrap().is_some(), "alive at 11 s");
    assert_eq!(store.loads(), loads, "served from the cache");
    // …and not one moment beyond, though the idle timer would allow it.
    advance(2 * SECOND).await;
    assert_eq!(cached.load(id).await.unwrap(), None, "expired at 13 s");
    assert!(!cached.is_cached(id));
}

#[tokio::test(start_paused = true)]
async fn a_shorter_touch_shortens_the_entry() {
    let cached = unchecked(MemoryStore::new());
    let id = cached
        .create(&common::data(&[]), Expiry::new(60 * SECOND, 600 * SECOND))
        .await
        .unwrap();
    assert!(cached.touch(id, 2 * SECOND).await.unwrap());
    advance(3 * SECOND).await;
    assert_eq!(cached.load(id).await.unwrap(), None);
}
