//! 25 and 100 concurrent read-modify-writes on one session, 100 trials
//! each: every acknowledged update is visible, every loser got a conflict.

mod common;

use foresight_store::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store() {
    common::concurrency_suite("memory", MemoryStore::new()).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_standalone() {
    let server = foresight_testkit::RedisServer::start();
    let store = foresight_store::RedisStore::standalone(&server.url()).unwrap();
    common::concurrency_suite("redis", store).await;
}
