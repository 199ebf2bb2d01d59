//! RedisStore under faults: corrupt records, a server killed mid-traffic
//! and restarted, and acknowledged writes across a replica promotion.
#![cfg(feature = "redis")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use foresight_store::{RedisStore, SessionId, SessionStore, StoreError, Version};
use foresight_testkit::RedisServer;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_records_are_typed_errors_and_never_overwritten() {
    let server = RedisServer::start();
    let store = RedisStore::standalone(&server.url()).unwrap();

    let client = deadpool_redis::redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    type Writer = fn(&str) -> deadpool_redis::redis::Cmd;
    let cases: [(&str, Writer); 6] = [
        ("a string", |key| {
            let mut c = deadpool_redis::redis::cmd("SET");
            c.arg(key).arg(&b"\x00\x01garbage"[..]);
            c
        }),
        ("a list", |key| {
            let mut c = deadpool_redis::redis::cmd("RPUSH");
            c.arg(key).arg("x");
            c
        }),
        ("a hash without version", |key| {
            let mut c = deadpool_redis::redis::cmd("HSET");
            c.arg(key).arg("d").arg(&b"\x01\x80"[..]);
            c
        }),
        ("a version that is not a number", |key| {
            let mut c = deadpool_redis::redis::cmd("HSET");
            c.arg(key)
                .arg("v")
                .arg("one")
                .arg("a")
                .arg("99999999999999");
            c.arg("i").arg("60000").arg("d").arg(&b"\x01\x80"[..]);
            c
        }),
        ("bytes that are not MessagePack", |key| {
            let mut c = deadpool_redis::redis::cmd("HSET");
            c.arg(key).arg("v").arg("1").arg("a").arg("99999999999999");
            c.arg("i").arg("60000").arg("d").arg(&b"\x01\xc1\xc1"[..]);
            c
        }),
        ("an unknown format byte", |key| {
            let mut c = deadpool_redis::redis::cmd("HSET");
            c.arg(key).arg("v").arg("1").arg("a").arg("99999999999999");
            c.arg("i").arg("60000").arg("d").arg(&b"\x09\x80"[..]);
            c
        }),
    ];
    for (what, write) in cases {
        let id = SessionId::random();
        let key = store.key(id);
        let _: () = write(&key).query_async(&mut conn).await.unwrap();
        let dump = || {
            let mut c = deadpool_redis::redis::cmd("DUMP");
            c.arg(&key);
            c
        };
        let before: Vec<u8> = dump().query_async(&mut conn).await.unwrap();

        let err = store.load(id).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt(_)),
            "{what}: load gave {err:?}"
        );
        for expected in [Version::FIRST, Version::new(2)] {
            let err = store
                .save(id, &common::data(&[("n", 1)]), expected)
                .await
                .unwrap_err();
            assert!(
                matches!(err, StoreError::Corrupt(_)),
                "{what}: save gave {err:?}"
            );
        }
        assert!(matches!(
            store.touch(id, Duration::from_secs(5)).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            store.delete(id, Some(Version::FIRST)).await,
            Err(StoreError::Corrupt(_))
        ));
        let after: Vec<u8> = dump().query_async(&mut conn).await.unwrap();
        assert_eq!(after, before, "{what}: record was modified");
        // The source chain names the cause.
        let err = store.load(id).await.unwrap_err();
        assert!(std::error::Error::source(&err).is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_follows_idle_and_absolute_deadlines() {
    let server = RedisServer::start();
    let store = RedisStore::standalone(&server.url()).unwrap();
    let pttl = |id| {
        let key = store.key(id);
        server.cli(&["PTTL", &key]).parse::<i64>().unwrap()
    };
    // Idle shorter than absolute: the idle timeout sets the TTL.
    let idle_first =
        foresight_store::Expiry::new(Duration::from_secs(60), Duration::from_secs(3600));
    let id = store.create(&common::data(&[]), idle_first).await.unwrap();
    assert!((58_000..=60_000).contains(&pttl(id)), "{}", pttl(id));
    store.touch(id, Duration::from_secs(120)).await.unwrap();
    assert!((118_000..=120_000).contains(&pttl(id)));
    // Absolute shorter than idle: the absolute deadline caps it, also after
    // a save and a touch.
    let abs_first = foresight_store::Expiry::new(Duration::from_secs(600), Duration::from_secs(30));
    let id = store.create(&common::data(&[]), abs_first).await.unwrap();
    assert!((28_000..=30_000).contains(&pttl(id)));
    store
        .save(id, &common::data(&[("n", 1)]), Version::FIRST)
        .await
        .unwrap();
    store.touch(id, Duration::from_secs(600)).await.unwrap();
    assert!((28_000..=30_000).contains(&pttl(id)));
}

/// Writers increment counters while the server is killed and restarted
/// (append-only file, fsync always). During the outage operations fail
/// promptly with `Unavailable`; afterwards traffic recovers, and no
/// acknowledged increment is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_traffic_and_restarted() {
    let mut server = RedisServer::builder().persistent().start();
    let store = RedisStore::standalone(&server.url())
        .unwrap()
        .with_op_timeout(Duration::from_millis(500));
    let sessions: Vec<SessionId> = {
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(
                store
                    .create(&common::data(&[("n", 0)]), common::expiry())
                    .await
                    .unwrap(),
            );
        }
        ids
    };
    let stop = Arc::new(AtomicBool::new(false));
    let unavailable = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = sessions
        .iter()
        .map(|&id| {
            let store = store.clone();
            let stop = stop.clone();
            let unavailable = unavailable.clone();
            tokio::spawn(async move {
                let (mut acked, mut unknown) = (0i64, 0i64);
                while !stop.load(Ordering::SeqCst) {
                    let loaded = match store.load(id).await {
                        Ok(loaded) => loaded.expect("session survives the restart"),
                        Err(e) => {
                            assert!(e.is_unavailable(), "{e:?}");
                            unavailable.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    };
                    let n: i64 = loaded.value.get("n").unwrap().unwrap();
                    match store
                        .save(id, &common::data(&[("n", n + 1)]), loaded.version)
                        .await
                    {
                        Ok(_) => acked += 1,
                        Err(StoreError::Conflict { .. }) => {}
                        Err(e) => {
                            assert!(e.is_unavailable(), "{e:?}");
                            unavailable.fetch_add(1, Ordering::SeqCst);
                            unknown += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                (id, acked, unknown)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server = blocking(move || {
        server.restart();
        server
    })
    .await;
    // Wait until traffic succeeds again.
    let probe = sessions[0];
    let mut recovered = false;
    for _ in 0..200 {
        if store.load(probe).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(recovered, "store did not recover after the restart");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);

    for worker in workers {
        let (id, acked, unknown) = worker.await.unwrap();
        let n: i64 = store
            .load(id)
            .await
            .unwrap()
            .unwrap()
            .value
            .get("n")
            .unwrap()
            .unwrap();
        assert!(
            acked <= n && n <= acked + unknown,
            "acked {acked}, unknown {unknown}, stored {n}"
        );
    }
    assert!(
        unavailable.load(Ordering::SeqCst) > 0,
        "the outage was not observed"
    );
    drop(server);
}

/// `with_replicas(1)` with `min-replicas-to-write 1`: writers run, the master is
/// killed right after acknowledged writes, the replica is promoted, and
/// every acknowledged write must be on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_replica_promotion() {
    for round in 0..3 {
        let mut master = RedisServer::builder()
            .config("min-replicas-to-write", "1")
            .config("min-replicas-max-lag", "10")
            .start();
        let replica = RedisServer::builder().replica_of(master.port()).start();
        // Wait until the master counts the replica as good for writes.
        for _ in 0..400 {
            if replica.info("replication", "master_link_status").as_deref() == Some("up")
                && master
                    .info("replication", "min_slaves_good_slaves")
                    .as_deref()
                    == Some("1")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let store = RedisStore::standalone(&master.url())
            .unwrap()
            .with_replicas(1, Duration::from_millis(1000))
            .with_op_timeout(Duration::from_secs(3));
        let mut ids = Vec::new();
        for _ in 0..8 {
            ids.push(
                store
                    .create(&common::data(&[("n", 0)]), common::expiry())
                    .await
                    .unwrap(),
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = ids
            .iter()
            .map(|&id| {
                let store = store.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut n = 0i64;
                    let mut version = Version::FIRST;
                    let mut acked = 0i64;
                    while !stop.load(Ordering::SeqCst) {
                        match store
                            .save(id, &common::data(&[("n", n + 1)]), version)
                            .await
                        {
                            Ok(v) => {
                                n += 1;
                                version = v;
                                acked = n;
                            }
                            Err(StoreError::NotReplicated { .. }) | Err(_) => break,
                        }
                    }
                    (id, acked)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200 + 100 * round)).await;
        master.kill();
        stop.store(true, Ordering::SeqCst);
        let mut results = Vec::new();
        for worker in workers {
            results.push(worker.await.unwrap());
        }
        assert_eq!(replica.cli(&["REPLICAOF", "NO", "ONE"]), "OK");
        let promoted = RedisStore::standalone(&replica.url()).unwrap();
        let mut missing = 0;
        let mut total = 0;
        for (id, acked) in results {
            total += acked;
            let n: i64 = match promoted.load(id).await.unwrap() {
                Some(loaded) => loaded.value.get("n").unwrap().unwrap(),
                None => 0,
            };
            if n < acked {
                missing += acked - n;
            }
        }
        eprintln!("round {round}: {total} acknowledged writes, {missing} missing after promotion");
        assert_eq!(missing, 0);
        assert!(total > 0);
    }
}
