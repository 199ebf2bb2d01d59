//! The conformance suite every `SessionStore` passes, written once.
//!
//! `conformance(store)` runs every check in sequence (so that a store backed
//! by a Redis Cluster is started once), naming each check as it goes.
//! `concurrent_rmw_trials` is the lost-update test.
// Each test binary uses a part of this module, and its items are `pub` for
// them, not for a public API.
#![allow(dead_code, unreachable_pub)]

#[cfg(feature = "cache")]
pub mod doubles;

use std::sync::Arc;
use std::time::Duration;

use foresight_store::{
    Expiry, SessionData, SessionId, SessionStore, StoreError, Version, Versioned,
};
use tokio::sync::Barrier;

/// Waits until every cache answers from memory: with acknowledged writes
/// (the default on an ordering bus), once its first heartbeat came back.
/// Works under paused time too.
#[cfg(feature = "cache")]
pub async fn trusted<S: SessionStore>(caches: &[&foresight_store::CachedStore<S>]) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !caches.iter().all(|c| c.is_trusted()) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("every cache trusted within 10 s");
}

/// Runs every conformance check against `store`.
pub async fn conformance<S: SessionStore + Clone>(store: S) {
    macro_rules! run {
        ($($check:ident),* $(,)?) => {$(
            eprintln!("conformance: {}", stringify!($check));
            $check(&store).await;
        )*};
    }
    run!(
        create_then_load,
        unknown_id_loads_none,
        ids_are_fresh_and_well_formed,
        save_increments_version,
        stale_save_conflicts,
        save_of_missing_session_conflicts,
        delete_checks_version,
        touch_keeps_data_and_version,
        oversize_is_refused,
        values_keep_their_types,
        ttl_and_version_agree_with_load,
    );
    concurrent_rmw_trials(&store, 25, 5).await;
}

pub fn data(pairs: &[(&str, i64)]) -> SessionData {
    let mut data = SessionData::new();
    for (k, v) in pairs {
        data.insert(*k, v).unwrap();
    }
    data
}

pub fn expiry() -> Expiry {
    Expiry::new(Duration::from_secs(600), Duration::from_secs(3600))
}

async fn create_then_load<S: SessionStore>(store: &S) {
    let d = data(&[("a", 1), ("b", 2)]);
    let id = store.create(&d, expiry()).await.unwrap();
    let loaded = store.load(id).await.unwrap().unwrap();
    assert_eq!(loaded, Versioned::new(d, Version::FIRST));
}

async fn unknown_id_loads_none<S: SessionStore>(store: &S) {
    assert_eq!(store.load(SessionId::random()).await.unwrap(), None);
}

async fn ids_are_fresh_and_well_formed<S: SessionStore>(store: &S) {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let id = store.create(&SessionData::new(), expiry()).await.unwrap();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<SessionId>().unwrap(), id);
        assert!(seen.insert(id));
    }
}

async fn save_increments_version<S: SessionStore>(store: &S) {
    let id = store.create(&data(&[("n", 0)]), expiry()).await.unwrap();
    let mut version = Version::FIRST;
    for n in 1..=3 {
        let v = store.save(id, &data(&[("n", n)]), version).await.unwrap();
        assert_eq!(v, version.next());
        version = v;
    }
    let loaded = store.load(id).await.unwrap().unwrap();
    assert_eq!(loaded.version, Version::new(4));
    assert_eq!(loaded.value.get::<i64>("n").unwrap(), Some(3));
}

async fn stale_save_conflicts<S: SessionStore>(store: &S) {
    let id = store.create(&data(&[("n", 0)]), expiry()).await.unwrap();
    store
        .save(id, &data(&[("n", 1)]), Version::FIRST)
        .await
        .unwrap();
    let err = store
        .save(id, &data(&[("n", 99)]), Version::FIRST)
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict { expected, actual } => {
            assert_eq!(expected, Version::FIRST);
            assert_eq!(actual, Some(Version::new(2)));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let loaded = store.load(id).await.unwrap().unwrap();
    assert_eq!(
        loaded.value.get::<i64>("n").unwrap(),
        Some(1),
        "stale write applied"
    );
}

async fn save_of_missing_session_conflicts<S: SessionStore>(store: &S) {
    let err = store
        .save(SessionId::random(), &data(&[]), Version::FIRST)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { actual: None, .. }),
        "{err:?}"
    );
}

async fn delete_checks_version<S: SessionStore>(store: &S) {
    let id = store.create(&data(&[]), expiry()).await.unwrap();
    let err = store.delete(id, Some(Version::new(7))).await.unwrap_err();
    assert!(err.is_conflict());
    assert!(store.load(id).await.unwrap().is_some());
    assert!(store.delete(id, Some(Version::FIRST)).await.unwrap());
    assert_eq!(store.load(id).await.unwrap(), None);
    assert!(!store.delete(id, None).await.unwrap());
    let other = store.create(&data(&[]), expiry()).await.unwrap();
    assert!(store.delete(other, None).await.unwrap());
}

async fn touch_keeps_data_and_version<S: SessionStore>(store: &S) {
    let id = store.create(&data(&[("k", 5)]), expiry()).await.unwrap();
    assert!(store.touch(id, Duration::from_secs(60)).await.unwrap());
    let loaded = store.load(id).await.unwrap().unwrap();
    assert_eq!(loaded, Versioned::new(data(&[("k", 5)]), Version::FIRST));
    assert!(
        !store
            .touch(SessionId::random(), Duration::from_secs(60))
            .await
            .unwrap()
    );
}

/// `load_with_ttl` reports the data `load` does and the time left, never
/// more than the idle timeout; `version` follows saves and deletes.
async fn ttl_and_version_agree_with_load<S: SessionStore>(store: &S) {
    let idle = Duration::from_secs(120);
    let id = store
        .create(
            &data(&[("t", 1)]),
            Expiry::new(idle, Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let loaded = store.load_with_ttl(id).await.unwrap().unwrap();
    assert_eq!(loaded.session, store.load(id).await.unwrap().unwrap());
    let ttl = loaded.ttl.expect("the store reports the time left");
    assert!(ttl <= idle && ttl > Duration::ZERO, "{ttl:?}");
    assert_eq!(store.version(id).await.unwrap(), Some(Version::FIRST));
    let v2 = store
        .save(id, &data(&[("t", 2)]), Version::FIRST)
        .await
        .unwrap();
    assert_eq!(store.version(id).await.unwrap(), Some(v2));
    assert!(store.delete(id, None).await.unwrap());
    assert_eq!(store.version(id).await.unwrap(), None);
    assert_eq!(store.load_with_ttl(id).await.unwrap(), None);
    assert_eq!(store.version(SessionId::random()).await.unwrap(), None);
}

async fn oversize_is_refused<S: SessionStore>(store: &S) {
    let mut big = SessionData::with_limit(1 << 20);
    big.insert("blob", &"x".repeat(80 * 1024)).unwrap();
    let err = store.create(&big, expiry()).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLarge(_)), "{err:?}");

    let id = store.create(&data(&[("n", 1)]), expiry()).await.unwrap();
    let err = store.save(id, &big, Version::FIRST).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLarge(_)), "{err:?}");
    let loaded = store.load(id).await.unwrap().unwrap();
    assert_eq!(loaded.version, Version::FIRST);
}

async fn values_keep_their_types<S: SessionStore>(store: &S) {
    let mut d = SessionData::new();
    d.insert("str", "héllo").unwrap();
    d.insert("float", &2.5f64).unwrap();
    d.insert("neg", &-12i64).unwrap();
    d.insert("big", &u64::MAX).unwrap();
    d.insert("list", &vec![serde_json::json!({"a": [1, null, true]})])
        .unwrap();
    let id = store.create(&d, expiry()).await.unwrap();
    assert_eq!(store.load(id).await.unwrap().unwrap().value, d);
}

/// Outcome of one trial of concurrent read-modify-writes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Trials {
    pub acknowledged: u64,
    pub conflicts: u64,
    pub lost: u64,
}

/// `trials` times: `writers` tasks load one session at the same moment,
/// increment a counter, append their name to a list and save with
/// compare-and-set. Every acknowledged write must be visible at the end, and
/// every other writer must have been told of a conflict.
pub async fn concurrent_rmw_trials<S: SessionStore + Clone>(
    store: &S,
    writers: usize,
    trials: usize,
) -> Trials {
    let mut total = Trials::default();
    for trial in 0..trials {
        let mut initial = data(&[("n", 0)]);
        initial.insert("who", &Vec::<String>::new()).unwrap();
        let id = store.create(&initial, expiry()).await.unwrap();
        let barrier = Arc::new(Barrier::new(writers));
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let store = store.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let loaded = store.load(id).await.unwrap().unwrap();
                    // Let the other writers read too before anyone saves
                    // (an in-memory store answers without yielding).
                    tokio::task::yield_now().await;
                    let mut d = loaded.value.clone();
                    let n: i64 = d.get("n").unwrap().unwrap();
                    let mut who: Vec<String> = d.get("who").unwrap().unwrap();
                    who.push(format!("w{w}"));
                    d.insert("n", &(n + 1)).unwrap();
                    d.insert("who", &who).unwrap();
                    match store.save(id, &d, loaded.version).await {
                        Ok(_) => Some(format!("w{w}")),
                        Err(StoreError::Conflict { .. }) => None,
                        Err(other) => panic!("trial {trial}: unexpected error {other:?}"),
                    }
                })
            })
            .collect();
        let mut acked = Vec::new();
        for task in tasks {
            if let Some(name) = task.await.unwrap() {
                acked.push(name);
            }
        }
        let final_data = store.load(id).await.unwrap().unwrap();
        let n: i64 = final_data.value.get("n").unwrap().unwrap();
        let who: Vec<String> = final_data.value.get("who").unwrap().unwrap();
        let lost = acked.iter().filter(|a| !who.contains(a)).count() as u64;
        assert_eq!(
            n as usize,
            acked.len(),
            "trial {trial}: counter disagrees with acks"
        );
        assert_eq!(final_data.version.get() as usize, 1 + acked.len());
        total.acknowledged += acked.len() as u64;
        total.conflicts += (writers - acked.len()) as u64;
        total.lost += lost;
    }
    assert_eq!(total.lost, 0, "acknowledged updates lost: {total:?}");
    total
}

/// `writers` tasks each increment one counter until their write is
/// acknowledged, retrying on conflict; the counter must end at `writers`.
pub async fn retrying_increments<S: SessionStore + Clone>(store: &S, writers: usize) -> u64 {
    let id = store.create(&data(&[("n", 0)]), expiry()).await.unwrap();
    let conflicts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let store = store.clone();
            let conflicts = conflicts.clone();
            tokio::spawn(async move {
                loop {
                    let loaded = store.load(id).await.unwrap().unwrap();
                    tokio::task::yield_now().await;
                    let n: i64 = loaded.value.get("n").unwrap().unwrap();
                    match store.save(id, &data(&[("n", n + 1)]), loaded.version).await {
                        Ok(_) => return,
                        Err(StoreError::Conflict { .. }) => {
                            conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(other) => panic!("unexpected error {other:?}"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let n: i64 = store
        .load(id)
        .await
        .unwrap()
        .unwrap()
        .value
        .get("n")
        .unwrap()
        .unwrap();
    assert_eq!(n as usize, writers);
    conflicts.load(std::sync::atomic::Ordering::Relaxed)
}

/// The concurrency test: 25 and 100 concurrent read-modify-writes on one
/// session, 100 trials each (no acknowledged update lost, every loser told),
/// then 25 writers that retry until their increment lands.
pub async fn concurrency_suite<S: SessionStore + Clone>(name: &str, store: S) {
    for writers in [25, 100] {
        let t = concurrent_rmw_trials(&store, writers, 100).await;
        eprintln!(
            "{name}: {writers} writers x 100 trials: {} acknowledged, {} conflicts, {} lost",
            t.acknowledged, t.conflicts, t.lost
        );
        assert_eq!(t.lost, 0);
        assert_eq!(t.acknowledged + t.conflicts, writers as u64 * 100);
    }
    let conflicts = retrying_increments(&store, 25).await;
    eprintln!("{name}: 25 retrying writers: counter exact, {conflicts} conflicts retried");
}

/// Read-your-writes across instances: `pairs` times, `b` reads (and may
/// cache) the session, `a` writes the next value, and `b` reads again at
/// once. Returns how many of those reads were stale; a read from the
/// future is a panic.
pub async fn stale_reads<S: SessionStore>(pairs: i64, a: &S, b: &S) -> i64 {
    let id = a.create(&data(&[("n", 0)]), expiry()).await.unwrap();
    let mut version = Version::FIRST;
    let mut stale = 0;
    for n in 1..=pairs {
        // B caches what it sees now (the read that follows is a hit unless
        // something tells B otherwise).
        b.load(id).await.unwrap().unwrap();
        version = a.save(id, &data(&[("n", n)]), version).await.unwrap();
        let read = b.load(id).await.unwrap().unwrap();
        let got = read.value.get::<i64>("n").unwrap().unwrap();
        assert!(got <= n, "{got} for write {n}");
        if got < n {
            stale += 1;
        }
    }
    stale
}
