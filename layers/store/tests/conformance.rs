//! The conformance suite against every store: MemoryStore, RedisStore
//! (standalone and cluster), and CachedStore over each.

mod common;

use foresight_store::MemoryStore;

#[tokio::test]
async fn memory_store() {
    common::conformance(MemoryStore::new()).await;
}

#[cfg(feature = "cache")]
#[tokio::test]
async fn cached_memory_store() {
    use foresight_store::{CachedStore, LocalBus};
    common::conformance(
        CachedStore::builder(MemoryStore::new())
            .with_bus(LocalBus::new())
            .build(),
    )
    .await;
}

#[cfg(feature = "redis")]
mod redis {
    use foresight_store::RedisStore;
    use foresight_testkit::{RedisCluster, RedisServer};

    use super::common;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_standalone() {
        let server = RedisServer::start();
        common::conformance(RedisStore::standalone(&server.url()).unwrap()).await;
    }

    #[cfg(feature = "cache")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cached_redis_standalone() {
        use std::time::Duration;

        use foresight_store::CachedStore;

        let server = RedisServer::start();
        let store = RedisStore::standalone(&server.url()).unwrap();
        let bus = store.invalidation_bus();
        assert!(bus.wait_connected(Duration::from_secs(10)).await);
        common::conformance(CachedStore::builder(store).with_bus(bus).build()).await;
    }

    /// One cluster for the plain and the cached store, since a cluster takes
    /// seconds to form.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_cluster_plain_and_cached() {
        let cluster = tokio::task::spawn_blocking(RedisCluster::start)
            .await
            .unwrap();
        let store = RedisStore::cluster(cluster.urls()).unwrap();
        assert!(store.is_cluster());
        common::conformance(store.clone()).await;

        #[cfg(feature = "cache")]
        {
            use std::time::Duration;

            use foresight_store::CachedStore;

            let bus = store.invalidation_bus();
            assert!(bus.wait_connected(Duration::from_secs(10)).await);
            common::conformance(CachedStore::builder(store).with_bus(bus).build()).await;
        }
    }
}
