//! MemoryStore's capacity bound and the sweep that makes expired sessions
//! go away without any task running, with paused time.

mod common;

use std::time::Duration;

use foresight_store::{Expiry, MemoryStore, SessionStore, StoreError};
use tokio::time::advance;

const SHORT: Expiry = Expiry::new(Duration::from_secs(1), Duration::from_secs(10));
const LONG: Expiry = Expiry::new(Duration::from_secs(600), Duration::from_secs(3600));

#[tokio::test(start_paused = true)]
async fn a_full_store_refuses_with_a_typed_error_and_recovers_room() {
    let store = MemoryStore::new().with_capacity(3);
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            store
                .create(&common::data(&[("n", n)]), LONG)
                .await
                .unwrap(),
        );
    }
    let err = store.create(&common::data(&[]), LONG).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Full { capacity: 3, retry_after } if retry_after == Duration::from_secs(1)),
        "{err:?}"
    );
    assert_eq!(store.stored(), 3);
    // Deleting makes room again.
    assert!(store.delete(ids[0], None).await.unwrap());
    store.create(&common::data(&[]), LONG).await.unwrap();
    assert!(matches!(
        store.create(&common::data(&[]), LONG).await,
        Err(StoreError::Full { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_full_store_makes_room_from_expired_sessions() {
    let store = MemoryStore::new().with_capacity(2);
    store.create(&common::data(&[]), SHORT).await.unwrap();
    store.create(&common::data(&[]), SHORT).await.unwrap();
    assert!(matches!(
        store.create(&common::data(&[]), LONG).await,
        Err(StoreError::Full { .. })
    ));
    advance(Duration::from_secs(2)).await;
    let id = store
        .create(&common::data(&[("n", 1)]), LONG)
        .await
        .unwrap();
    assert_eq!(store.stored(), 1, "both expired sessions were swept");
    assert!(store.load(id).await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn creates_sweep_expired_sessions_a_shard_at_a_time() {
    let store = MemoryStore::new();
    for _ in 0..10 {
        store.create(&common::data(&[]), SHORT).await.unwrap();
    }
    advance(Duration::from_secs(2)).await;
    assert_eq!(store.stored(), 10, "nothing read them, nothing swept yet");
    // Every 64th create sweeps the next of the 32 shards: after 64 x 32
    // creates every shard has been swept once since the sessions expired.
    for _ in 0..64 * 32 {
        store.create(&common::data(&[]), LONG).await.unwrap();
    }
    assert_eq!(store.stored(), 64 * 32, "only live sessions remain");
    assert_eq!(store.len(), 64 * 32);
}

#[tokio::test(start_paused = true)]
async fn a_full_sweep_that_freed_nothing_is_not_repeated_within_a_second() {
    let store = MemoryStore::new().with_capacity(2);
    store.create(&common::data(&[]), SHORT).await.unwrap();
    store.create(&common::data(&[]), SHORT).await.unwrap();
    advance(Duration::from_millis(900)).await;
    // Full of live sessions: the sweep frees nothing.
    assert!(matches!(
        store.create(&common::data(&[]), LONG).await,
        Err(StoreError::Full { .. })
    ));
    // Both expired at 1 s, but the next full sweep waits until 1.9 s.
    advance(Duration::from_millis(300)).await;
    assert!(matches!(
        store.create(&common::data(&[]), LONG).await,
        Err(StoreError::Full { .. })
    ));
    assert_eq!(store.stored(), 2, "not swept yet");
    advance(Duration::from_millis(800)).await;
    store.create(&common::data(&[]), LONG).await.unwrap();
    assert_eq!(store.stored(), 1);
}
