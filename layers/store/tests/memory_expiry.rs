//! Idle and absolute expiry of MemoryStore, at T-1 s and T+1 s, with paused
//! time.

mod common;

use std::time::Duration;

use foresight_store::{Expiry, MemoryStore, SessionStore};
use tokio::time::advance;

const IDLE: Duration = Duration::from_secs(60);
const ABSOLUTE: Duration = Duration::from_secs(300);
const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn idle_expiry() {
    let store = MemoryStore::new();
    let id = store
        .create(&common::data(&[("n", 1)]), Expiry::new(IDLE, ABSOLUTE))
        .await
        .unwrap();
    advance(IDLE - SECOND).await;
    assert!(store.load(id).await.unwrap().is_some(), "alive at T-1s");
    advance(2 * SECOND).await;
    assert!(store.load(id).await.unwrap().is_none(), "expired at T+1s");
}

#[tokio::test(start_paused = true)]
async fn save_and_touch_restart_the_idle_timeout() {
    let store = MemoryStore::new();
    let id = store
        .create(&common::data(&[("n", 1)]), Expiry::new(IDLE, ABSOLUTE))
        .await
        .unwrap();
    advance(IDLE - SECOND).await;
    let v = store.load(id).await.unwrap().unwrap().version;
    store.save(id, &common::data(&[("n", 2)]), v).await.unwrap();
    advance(IDLE - SECOND).await;
    assert!(
        store.load(id).await.unwrap().is_some(),
        "save restarted the timer"
    );
    assert!(store.touch(id, IDLE).await.unwrap());
    advance(IDLE - SECOND).await;
    assert!(
        store.load(id).await.unwrap().is_some(),
        "touch restarted the timer"
    );
    advance(2 * SECOND).await;
    assert!(store.load(id).await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn absolute_expiry_wins_over_activity() {
    let store = MemoryStore::new();
    let id = store
        .create(&common::data(&[("n", 1)]), Expiry::new(IDLE, ABSOLUTE))
        .await
        .unwrap();
    // Keep it busy until just before the absolute deadline.
    let mut elapsed = Duration::ZERO;
    while elapsed + 30 * SECOND <= ABSOLUTE - SECOND {
        advance(30 * SECOND).await;
        elapsed += 30 * SECOND;
        assert!(store.touch(id, IDLE).await.unwrap());
    }
    advance(ABSOLUTE - SECOND - elapsed).await;
    assert!(store.load(id).await.unwrap().is_some(), "alive at T-1s");
    advance(2 * SECOND).await;
    assert!(store.load(id).await.unwrap().is_none(), "expired at T+1s");
    let err = store
        .save(id, &common::data(&[]), foresight_store::Version::FIRST)
        .await
        .unwrap_err();
    assert!(err.is_conflict());
}

#[tokio::test(start_paused = true)]
async fn sweeper_drops_expired_sessions() {
    let store = MemoryStore::new();
    let _sweeper = store.spawn_sweeper(10 * SECOND);
    for _ in 0..10 {
        store
            .create(&common::data(&[]), Expiry::new(IDLE, ABSOLUTE))
            .await
            .unwrap();
    }
    assert_eq!(store.len(), 10);
    advance(IDLE + SECOND).await;
    assert!(store.is_empty(), "expired sessions are not live");
    assert_eq!(store.stored(), 10, "not purged yet");
    advance(20 * SECOND).await;
    tokio::task::yield_now().await;
    assert_eq!(store.stored(), 0, "purged by the sweeper");
}
