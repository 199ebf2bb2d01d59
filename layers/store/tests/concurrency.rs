//! 25 and 100 concurrent read-modify-writes on one session, 100 trials
//! each: every acknowledged update is visible, every loser got a conflict.

mod common;

use foresight_store::{MemoryStore, SessionStore};

async fn both_sizes<S: SessionStore + Clone>(name: &str, store: S) {
    for writers in [25, 100] {
        let t = common::concurrent_rmw_trials(&store, writers, 100).await;
        eprintln!(
            "{name}: {writers} writers x 100 trials: {} acknowledged, {} conflicts, {} lost",
            t.acknowledged, t.conflicts, t.lost
        );
        assert_eq!(t.lost, 0);
        assert_eq!(t.acknowledged + t.conflicts, writers as u64 * 100);
    }
    let conflicts = common::retrying_increments(&store, 25).await;
    eprintln!("{name}: 25 retrying writers: counter exact, {conflicts} conflicts retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store() {
    both_sizes("memory", MemoryStore::new()).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_standalone() {
    let server = foresight_testkit::RedisServer::start();
    let store = foresight_store::RedisStore::standalone(&server.url()).unwrap();
    both_sizes("redis", store).await;
}
