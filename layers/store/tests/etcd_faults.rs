//! EtcdStore under leader faults: writers and readers run while the etcd
//! leader is SIGKILLed (then restarted) or SIGSTOPped (then resumed),
//! rounds alternating. Each round records
//! - a history per session of loads and compare-and-sets from three
//!   clients, checked with the linearizability checker, and
//! - single-writer counters: every acknowledged increment must be in the
//!   final value (`acked <= n <= acked + unknown`).
//!
//! `FORESIGHT_FAULT_ROUNDS` sets the number of rounds (default 4, one
//! leader fault each): `FORESIGHT_FAULT_ROUNDS=50 cargo test -p
//! foresight-store --features etcd --test etcd_faults -- --nocapture`.
//! Skipped with a message when etcd is not installed, unless `CI` is set.
#![cfg(feature = "etcd")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use foresight_store::{EtcdStore, SessionId, SessionStore, StoreError, Version};
use foresight_testkit::EtcdCluster;
use foresight_testkit::linearizability::{History, Register, RegisterInput, RegisterOutput, check};

const KEYS: usize = 2;
const CLIENTS_PER_KEY: usize = 3;
const COUNTERS: usize = 3;

type Recorded = History<RegisterInput, RegisterOutput>;

#[derive(Clone, Copy, Debug)]
enum Fault {
    Kill,
    Stop,
}

#[derive(Debug, Default)]
struct Report {
    histories: usize,
    operations: usize,
    unknown: usize,
    violations: usize,
    acknowledged: i64,
    lost: i64,
}

fn rounds() -> usize {
    std::env::var("FORESIGHT_FAULT_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4)
}

/// Loads and compare-and-sets from the last version seen (sometimes stale
/// on purpose), recorded in `history`.
async fn register_client(
    store: EtcdStore,
    id: SessionId,
    history: Arc<Recorded>,
    client: i64,
    stop: Arc<AtomicBool>,
) {
    let mut seq = 0i64;
    let mut last_version = Version::FIRST;
    // After a write of unknown outcome, read before writing again, as a
    // client would (and the checker need not place many unknown writes).
    let mut must_read = false;
    while !stop.load(Ordering::SeqCst) {
        seq += 1;
        if seq % 2 == 1 || must_read {
            let call = history.invoke();
            match store.load(id).await {
                Ok(Some(loaded)) => {
                    let value: i64 = loaded.value.get("n").unwrap().unwrap();
                    last_version = loaded.version;
                    must_read = false;
                    let output = RegisterOutput::Loaded {
                        version: loaded.version.get(),
                        value,
                    };
                    history.ok(call, RegisterInput::Load, output);
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
                Err(e) => {
                    assert!(e.is_unavailable(), "{e:?}");
                    history.unknown(call, input);
                    must_read = true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// Increments its own counter; returns (acknowledged, unknown outcomes).
async fn counter_writer(store: EtcdStore, id: SessionId, stop: Arc<AtomicBool>) -> (i64, i64) {
    let (mut acked, mut unknown) = (0, 0);
    while !stop.load(Ordering::SeqCst) {
        let loaded = match store.load(id).await {
            Ok(loaded) => loaded.expect("counter survives"),
            Err(e) => {
                assert!(e.is_unavailable(), "{e:?}");
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
            // Only after an unknown outcome that was in fact applied.
            Err(StoreError::Conflict { .. }) => assert!(unknown > 0, "conflict with no rival"),
            Err(e) => {
                assert!(e.is_unavailable(), "{e:?}");
                unknown += 1;
            }
        }
    }
    (acked, unknown)
}

async fn with_cluster<T: Send + 'static>(
    cluster: EtcdCluster,
    f: impl FnOnce(&mut EtcdCluster) -> T + Send + 'static,
) -> (EtcdCluster, T) {
    tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        let out = f(&mut cluster);
        (cluster, out)
    })
    .await
    .unwrap()
}

async fn round(cluster: EtcdCluster, store: &EtcdStore, fault: Fault) -> (EtcdCluster, Report) {
    let mut ids = Vec::new();
    for _ in 0..KEYS + COUNTERS {
        let id = store
            .create(&common::data(&[("n", 0)]), common::expiry())
            .await
            .unwrap();
        ids.push(id);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let histories: Vec<Arc<Recorded>> = (0..KEYS).map(|_| Arc::new(History::new())).collect();
    let mut clients = Vec::new();
    for (k, &id) in ids[..KEYS].iter().enumerate() {
        for c in 0..CLIENTS_PER_KEY {
            let client = (k * CLIENTS_PER_KEY + c) as i64 + 1;
            clients.push(tokio::spawn(register_client(
                store.clone(),
                id,
                histories[k].clone(),
                client,
                stop.clone(),
            )));
        }
    }
    let counters: Vec<_> = ids[KEYS..]
        .iter()
        .map(|&id| {
            (
                id,
                tokio::spawn(counter_writer(store.clone(), id, stop.clone())),
            )
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(300)).await;
    let (cluster, _) = with_cluster(cluster, move |cluster| {
        let leader = cluster.wait_leader(None);
        match fault {
            Fault::Kill => cluster.kill(leader),
            Fault::Stop => cluster.stop(leader),
        }
        // Traffic goes on while the others elect a leader and serve.
        cluster.wait_leader(Some(leader));
        std::thread::sleep(Duration::from_millis(300));
        match fault {
            Fault::Kill => cluster.restart(leader),
            Fault::Stop => cluster.cont(leader),
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }

    let mut report = Report::default();
    for history in &histories {
        let ops = history.operations();
        report.histories += 1;
        report.operations += ops.len();
        report.unknown += ops.iter().filter(|o| o.output.is_none()).count();
        if let Err(e) = check(Register::new(1, 0), &ops) {
            eprintln!("{fault:?}: {e}");
            report.violations += 1;
        }
    }
    for (id, writer) in counters {
        let (acked, unknown) = writer.await.unwrap();
        let n: i64 = final_load(store, id).await.value.get("n").unwrap().unwrap();
        report.acknowledged += acked;
        report.lost += (acked - n).max(0);
        assert!(
            n <= acked + unknown,
            "{n} > {acked} acked + {unknown} unknown"
        );
    }
    (cluster, report)
}

/// A load after the fault, retried until the cluster answers.
async fn final_load(
    store: &EtcdStore,
    id: SessionId,
) -> foresight_store::Versioned<foresight_store::SessionData> {
    for _ in 0..100 {
        match store.load(id).await {
            Ok(loaded) => return loaded.expect("counter survives"),
            Err(e) => assert!(e.is_unavailable(), "{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the cluster did not answer after the fault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_faults_lose_no_acknowledged_write_and_stay_linearizable() {
    let Some(mut cluster) = tokio::task::spawn_blocking(EtcdCluster::start)
        .await
        .unwrap()
    else {
        return;
    };
    let store = EtcdStore::connect(cluster.endpoints())
        .await
        .unwrap()
        .with_op_timeout(Duration::from_millis(1000));
    let mut total = Report::default();
    let rounds = rounds();
    for n in 0..rounds {
        let fault = if n % 2 == 0 { Fault::Kill } else { Fault::Stop };
        let (back, r) = round(cluster, &store, fault).await;
        cluster = back;
        eprintln!(
            "round {n} ({fault:?} the leader): {} histories, {} operations ({} unknown), \
             {} violations; {} acknowledged increments, {} lost",
            r.histories, r.operations, r.unknown, r.violations, r.acknowledged, r.lost
        );
        total.histories += r.histories;
        total.operations += r.operations;
        total.unknown += r.unknown;
        total.violations += r.violations;
        total.acknowledged += r.acknowledged;
        total.lost += r.lost;
    }
    eprintln!(
        "etcd, {rounds} leader faults: {} histories checked ({} operations, {} unknown outcomes), \
         {} violations; {} acknowledged increments, {} lost",
        total.histories,
        total.operations,
        total.unknown,
        total.violations,
        total.acknowledged,
        total.lost
    );
    assert_eq!(total.lost, 0, "acknowledged writes lost");
    assert_eq!(total.violations, 0, "histories not linearizable");
    assert_eq!(total.histories, rounds * KEYS);
    assert!(total.acknowledged > 0);
}
