//! The conformance suite and the concurrency test on `EtcdStore` and on
//! `CachedStore<EtcdStore>` (invalidated by an etcd watch), over a
//! 3-member etcd cluster. Skipped with a message when etcd is not
//! installed, unless `CI` is set.
#![cfg(feature = "etcd")]

mod common;

use foresight_store::EtcdStore;
use foresight_testkit::EtcdCluster;

async fn cluster() -> Option<EtcdCluster> {
    tokio::task::spawn_blocking(EtcdCluster::start)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_store_conformance() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let store = EtcdStore::connect(cluster.endpoints()).await.unwrap();
    common::conformance(store.clone()).await;
    // However many sessions, one lease per bucket of deadlines: the suite
    // creates sessions with a few expiries only.
    let leases = store.lease_count().await;
    assert!((1..=4).contains(&leases), "{leases} leases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_store_concurrency() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let store = EtcdStore::connect(cluster.endpoints()).await.unwrap();
    common::concurrency_suite("etcd", store).await;
}

#[cfg(feature = "cache")]
mod cached {
    use std::time::Duration;

    use foresight_store::{CachedStore, EtcdStore};

    use super::{cluster, common};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cached_etcd_store_conformance_and_concurrency() {
        let Some(cluster) = cluster().await else {
            return;
        };
        let store = EtcdStore::connect(cluster.endpoints()).await.unwrap();
        let bus = store.invalidation_bus();
        assert!(bus.wait_connected(Duration::from_secs(10)).await);
        let cached = CachedStore::builder(store).with_bus(bus).build();
        common::conformance(cached.clone()).await;
        assert!(cached.is_trusted(), "the watch's heartbeat proves it live");
        common::concurrency_suite("cached etcd", cached).await;
    }
}
