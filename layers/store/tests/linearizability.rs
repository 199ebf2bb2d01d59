//! Histories of concurrent loads and compare-and-sets on a few sessions,
//! recorded while the Redis Cluster master serving them is killed and its
//! replica promoted, each checked with the linearizability checker.
#![cfg(feature = "redis")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use foresight_store::{RedisStore, SessionId, SessionStore, StoreError, Version};
use foresight_testkit::RedisCluster;
use foresight_testkit::linearizability::{History, Register, RegisterInput, RegisterOutput, check};

const KEYS: usize = 3;
const CLIENTS_PER_KEY: usize = 3;

type Recorded = History<RegisterInput, RegisterOutput>;

async fn client(
    store: RedisStore,
    id: SessionId,
    history: Arc<Recorded>,
    client: i64,
    stop: Arc<AtomicBool>,
) {
    let mut seq = 0i64;
    let mut last_version = Version::FIRST;
    while !stop.load(Ordering::SeqCst) {
        seq += 1;
        // Alternate reads and compare-and-sets from the last version seen,
        // which is sometimes stale on purpose.
        if seq % 2 == 1 {
            let call = history.invoke();
            match store.load(id).await {
                Ok(Some(loaded)) => {
                    let value: i64 = loaded.value.get("n").unwrap().unwrap();
                    last_version = loaded.version;
                    history.ok(
                        call,
                        RegisterInput::Load,
                        RegisterOutput::Loaded {
                            version: loaded.version.get(),
                            value,
                        },
                    );
                }
                Ok(None) => panic!("session vanished"),
                // A failed read has no effect: nothing to record.
                Err(e) => assert!(e.is_unavailable(), "{e:?}"),
            }
        } else {
            let value = client * 1_000_000 + seq;
            let input = RegisterInput::Cas {
                expected: last_version.get(),
                value,
            };
            let call = history.invoke();
            match store
                .save(id, &common::data(&[("n", value)]), last_version)
                .await
            {
                Ok(v) => history.ok(call, input, RegisterOutput::Written { version: v.get() }),
                Err(StoreError::Conflict { .. }) => {
                    history.ok(call, input, RegisterOutput::Conflict)
                }
                // Applied on the master but not confirmed by a replica: it may
                // or may not survive the failover.
                Err(StoreError::NotReplicated { .. }) => history.unknown(call, input),
                Err(e) => {
                    assert!(e.is_unavailable(), "{e:?}");
                    history.unknown(call, input);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_histories_stay_linearizable_across_a_master_failover() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    // Acknowledged writes are on the replica before the client hears of
    // them, so a promotion cannot lose them.
    let store = RedisStore::cluster(cluster.urls())
        .unwrap()
        .with_replicas(1, Duration::from_millis(500))
        .with_op_timeout(Duration::from_millis(1500));

    // Sessions on the master that will be killed.
    let mut ids = Vec::new();
    let mut victim = None;
    while ids.len() < KEYS {
        let id = store
            .create(&common::data(&[("n", 0)]), common::expiry())
            .await
            .unwrap();
        let master = cluster.master_of(&store.key(id)).unwrap();
        if *victim.get_or_insert(master) == master {
            ids.push(id);
        } else {
            store.delete(id, None).await.unwrap();
        }
    }
    let victim = victim.unwrap();
    let mut cluster = cluster;

    let stop = Arc::new(AtomicBool::new(false));
    let histories: Vec<Arc<Recorded>> = (0..KEYS).map(|_| Arc::new(History::new())).collect();
    let mut tasks = Vec::new();
    for (k, &id) in ids.iter().enumerate() {
        for c in 0..CLIENTS_PER_KEY {
            tasks.push(tokio::spawn(client(
                store.clone(),
                id,
                histories[k].clone(),
                (k * CLIENTS_PER_KEY + c) as i64 + 1,
                stop.clone(),
            )));
        }
    }

    // Two failovers: the master serving the sessions is killed, its replica
    // promoted; the old master comes back as a replica, and the new master
    // is killed in turn.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let key = store.key(ids[0]);
    let mut victim = victim;
    for failover in 0..2 {
        let key = key.clone();
        let (back, promoted) = tokio::task::spawn_blocking(move || {
            cluster.node_mut(victim).kill();
            let promoted = cluster.wait_for_failover(&key, victim);
            (cluster, promoted)
        })
        .await
        .unwrap();
        cluster = back;
        eprintln!("failover {failover}: master {victim} killed, node {promoted} promoted");
        // Traffic goes on against the promoted replica for a while.
        tokio::time::sleep(Duration::from_millis(2000)).await;
        if failover == 0 {
            let old = victim;
            cluster = tokio::task::spawn_blocking(move || {
                cluster.node_mut(old).restart();
                cluster.wait_ready();
                cluster
            })
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        victim = promoted;
    }
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }

    let mut total_ops = 0;
    let mut total_unknown = 0;
    let mut writes_after_failover = 0;
    for (k, history) in histories.iter().enumerate() {
        let ops = history.operations();
        let unknown = ops.iter().filter(|o| o.output.is_none()).count();
        let written = ops
            .iter()
            .filter(|o| matches!(o.output, Some(RegisterOutput::Written { .. })))
            .count();
        total_ops += ops.len();
        total_unknown += unknown;
        writes_after_failover += written;
        let result = check(Register::new(1, 0), &ops);
        eprintln!(
            "session {k}: {} operations ({written} writes, {unknown} unknown outcomes): {}",
            ops.len(),
            if result.is_ok() {
                "linearizable"
            } else {
                "NOT linearizable"
            }
        );
        result.unwrap();
    }
    eprintln!(
        "{KEYS} histories, {total_ops} operations checked ({total_unknown} unknown outcomes)"
    );
    assert!(writes_after_failover > 0);
    drop(cluster);
}
