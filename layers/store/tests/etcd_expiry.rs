//! EtcdStore expiry: a session is gone at its idle or absolute deadline,
//! although etcd removes its key only when its bucket's lease runs out.
//! Skipped with a message when etcd is not installed, unless `CI` is set.
#![cfg(feature = "etcd")]

mod common;

use std::time::Duration;

use foresight_store::{EtcdStore, Expiry, SessionStore, StoreError, Version};
use foresight_testkit::EtcdCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_at_their_deadline_not_their_lease() {
    let Some(cluster) = tokio::task::spawn_blocking(EtcdCluster::start)
        .await
        .unwrap()
    else {
        return;
    };
    // Ten-minute buckets: every lease outlives the deadlines below by far.
    let store = EtcdStore::connect(cluster.endpoints())
        .await
        .unwrap()
        .with_lease_bucket(Duration::from_secs(600));

    let idle = store
        .create(
            &common::data(&[("n", 1)]),
            Expiry::new(Duration::from_millis(800), Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let absolute = store
        .create(
            &common::data(&[("n", 1)]),
            Expiry::new(Duration::from_secs(3600), Duration::from_millis(1200)),
        )
        .await
        .unwrap();
    let ttl = store
        .load_with_ttl(idle)
        .await
        .unwrap()
        .unwrap()
        .ttl
        .unwrap();
    assert!(ttl <= Duration::from_millis(800), "{ttl:?}");
    // A touch with a long idle timeout does not pass the absolute deadline.
    assert!(
        store
            .touch(absolute, Duration::from_secs(3600))
            .await
            .unwrap()
    );
    let ttl = store
        .load_with_ttl(absolute)
        .await
        .unwrap()
        .unwrap()
        .ttl
        .unwrap();
    assert!(ttl <= Duration::from_millis(1200), "{ttl:?}");

    tokio::time::sleep(Duration::from_millis(1300)).await;
    for id in [idle, absolute] {
        assert_eq!(store.load(id).await.unwrap(), None);
        assert_eq!(store.version(id).await.unwrap(), None);
        assert!(!store.touch(id, Duration::from_secs(60)).await.unwrap());
        let err = store
            .save(id, &common::data(&[("n", 2)]), Version::FIRST)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { actual: None, .. }),
            "{err:?}"
        );
        assert!(!store.delete(id, None).await.unwrap());
    }
}
