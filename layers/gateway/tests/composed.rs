//! The composed stack end to end: the gateway binary in front of three
//! instance processes, each running SessionMirrorLayer over
//! `CachedStore<RedisStore>` on a Redis Cluster of six `redis-server`
//! processes (see `support::stack`).
//!
//! The gateway routes by the session cookie the instances set, with the
//! default shadow policy and every instance shadow-aware, so each write is
//! copied to the session's secondary and each session's first read warms
//! it. One test walks through the life of the stack:
//!
//! 1. **Sticky:** every request of a session reaches the same instance,
//!    its primary, while all are healthy.
//! 2. **SIGKILL of an instance** under a closed-loop load of idempotent
//!    requests (`PUT` then `GET` of a counter): no client-visible error, no
//!    stale read, every acknowledged write reads back. Measured: the share
//!    of moved sessions whose first load on their secondary was a cache hit
//!    (the instances report each request's hits and misses).
//! 3. **A bad file:** a file that drops the dead instance but still names
//!    it in `shadow_aware` makes the binary exit 2 with
//!    `file:line:column`, and on SIGHUP is refused with the same message
//!    while the gateway keeps its instances.
//! 4. **SIGHUP reload** under the same load: the dead instance removed, a
//!    new one added, a weight changed. No request dropped, no write lost.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::load::{Load, SessionRun, failures, lost_writes};
use support::stack::{Member, Stack, WebClient, all_healthy, composed_config, create_sessions};
use support::{BIN, get};

const SESSIONS: usize = 36;
const THINK: Duration = Duration::from_millis(50);
/// Bound of each wait on the load; generous for a loaded debug build.
const PHASE_LIMIT: Duration = Duration::from_secs(60);

/// The entry point of the instance processes; a no-op in a normal run.
#[test]
fn instance_process() {
    support::instance::serve_if_instance();
}

/// 1-based line and column of the first `needle` in `text`.
fn position(text: &str, needle: &str) -> (usize, usize) {
    let offset = text.find(needle).unwrap();
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap().chars().count() + 1;
    (line, column)
}

/// The instance ids the gateway's admin listener reports.
async fn listed(stack: &Stack) -> Vec<String> {
    let report = get(stack.gateway.admin, "/instances", "").await;
    report
        .lines()
        .filter(|l| l.contains("\t127.0.0.1:"))
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect()
}

/// For each of `runs`, the answers per instance in `phase`.
fn served_in_phase(runs: &[SessionRun], phase: u64) -> Vec<BTreeMap<String, usize>> {
    runs.iter()
        .map(|run| {
            let mut by = BTreeMap::new();
            for s in run.served.iter().filter(|s| s.phase == phase) {
                *by.entry(s.instance.clone()).or_default() += 1;
            }
            by
        })
        .collect()
}

/// Checks that sessions stick in phase 0: while every instance is
/// Healthy, every first attempt reaches its session's primary. The gateway
/// moves keys off an instance that is not (a Degraded one drains, an
/// Ejected one is skipped and comes back under slow start), which a loaded
/// machine causes: when a poll saw any instance not Healthy, or the
/// gateway ejected one, the moves are printed, not asserted. Replays
/// (after the attempt timeout) are counted. Returns the first attempts,
/// those off their primary, and the replays.
fn check_sticky(runs: &[SessionRun], all_healthy: bool, ejected: u64) -> (usize, u64, usize) {
    let (mut firsts, mut off_primary, mut replays) = (0, 0, 0);
    for run in runs {
        for served in run.served.iter().filter(|s| s.phase == 0) {
            if served.attempt > 0 {
                replays += 1;
                continue;
            }
            firsts += 1;
            if served.instance != run.session.primary {
                off_primary += 1;
            }
        }
    }
    if all_healthy && ejected == 0 {
        assert_eq!(
            off_primary, 0,
            "first attempts off their primary while all are healthy"
        );
    } else {
        eprintln!("not every instance was Healthy ({ejected} ejections): moves not asserted");
    }
    (firsts, off_primary, replays)
}

/// Polls the gateway's instance states every 50 ms until `stop`; whether
/// every poll found every instance Healthy. A Degraded or Ejected state
/// lasts at least a second, so none goes unseen.
async fn watch_health(admin: std::net::SocketAddr, stop: Arc<AtomicBool>) -> bool {
    let mut healthy = true;
    while !stop.load(Ordering::SeqCst) {
        healthy &= all_healthy(admin).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    healthy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_stick_survive_a_sigkill_and_a_reload() {
    let mut stack = Stack::start("instance_process", &["alpha", "beta", "gamma"]).await;
    let client = WebClient::new(stack.gateway.public, Duration::from_secs(20));

    // 1. Sticky: each session's requests reach one instance.
    let sessions = create_sessions(&client, &stack.members, SESSIONS).await;
    let mut per_instance: HashMap<String, usize> = HashMap::new();
    for session in &sessions {
        *per_instance.entry(session.primary.clone()).or_default() += 1;
    }
    eprintln!("sessions per primary: {per_instance:?}");
    assert_eq!(per_instance.len(), 3, "every instance is a primary");
    let stop_watch = Arc::new(AtomicBool::new(false));
    let watch = tokio::spawn(watch_health(stack.gateway.admin, stop_watch.clone()));
    let load = Load::start(&client, sessions, THINK);
    load.wait_iterations(3, PHASE_LIMIT).await;

    // 2. SIGKILL of one instance under the load, every other one healthy.
    stack.wait_all_healthy(PHASE_LIMIT).await;
    let victim = "beta";
    let victim_index = stack.index_of(victim);
    // The phase moves first, so that phase 0 holds only answers from
    // before the kill.
    let killed = load.next_phase();
    stop_watch.store(true, Ordering::SeqCst);
    let healthy_throughout = watch.await.unwrap();
    let rerouted = stack
        .gateway_counter("foresight_failover_rerouted_total")
        .await;
    let ejected = stack
        .gateway_counter("foresight_failover_ejections_total")
        .await;
    stack.instances[victim_index].kill();
    load.wait_iterations(4, PHASE_LIMIT).await;
    let runs = load.stop().await;

    let (firsts, off_primary, replays) = check_sticky(&runs, healthy_throughout, ejected);
    eprintln!(
        "before the kill: {firsts} first attempts, {off_primary} of them off their primary \
         ({rerouted} rerouted by health), {replays} replays"
    );
    let failed = failures(&runs);
    assert!(
        failed.is_empty(),
        "client-visible errors or stale reads: {failed:#?}"
    );
    let lost = lost_writes(&client, &runs).await;
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:#?}");

    // The moved sessions' first loads on their secondaries, after the kill.
    let moved: Vec<&SessionRun> = runs
        .iter()
        .filter(|r| r.session.primary == victim)
        .collect();
    assert!(!moved.is_empty());
    let mut warm = 0;
    for run in &moved {
        let first = run
            .served
            .iter()
            .find(|s| s.phase == killed && s.instance != victim)
            .expect("served after the kill");
        assert!(
            first.hits + first.misses >= 1,
            "{}: the session load is counted by the cache: {first:?}",
            run.session.cookie
        );
        if first.misses == 0 {
            warm += 1;
        }
    }
    // For comparison: the primaries' own hit ratio before the kill.
    let before: Vec<_> = runs
        .iter()
        .flat_map(|r| &r.served)
        .filter(|s| s.phase == 0)
        .collect();
    let primary_hits = before.iter().filter(|s| s.misses == 0).count();
    eprintln!(
        "warm-cache hit ratio of the moved sessions' first loads on their secondaries: \
         {warm}/{} = {:.1} % (target 99 %); all loads before the kill: {primary_hits}/{} hits",
        moved.len(),
        100.0 * warm as f64 / moved.len() as f64,
        before.len(),
    );

    // 3. A file that drops the dead instance but still names it in
    // `shadow_aware`: refused at start and on reload, with its position.
    let alpha = stack.instance("alpha").addr;
    let gamma = stack.instance("gamma").addr;
    let delta = stack.spawn_instance("delta").await;
    let next: Vec<Member> = vec![
        ("alpha".into(), alpha, 1.0),
        ("gamma".into(), gamma, 2.0),
        ("delta".into(), delta.addr, 1.0),
    ];
    let bad = composed_config(&next, &["alpha", "beta", "gamma"]);
    let (line, column) = position(&bad, "\"beta\"");
    let expected = format!(
        "{}:{line}:{column}: shadow_aware names \"beta\", which is no [[instance]]",
        stack.gateway.path.display()
    );
    std::fs::write(&stack.gateway.path, &bad).unwrap();
    let start = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&stack.gateway.path)
        .output()
        .unwrap();
    assert_eq!(start.status.code(), Some(2), "{start:?}");
    assert_eq!(String::from_utf8_lossy(&start.stderr).trim(), expected);
    stack.gateway.signal("-HUP");
    let refusal = format!("configuration not reloaded: {expected}");
    wait_for(
        || stack.gateway.log.lock().unwrap().contains(&refusal),
        "the refusal",
    )
    .await;
    assert_eq!(
        listed(&stack).await,
        ["alpha", "beta", "gamma"],
        "a refused file changes nothing"
    );

    // 4. A reload under load: beta removed, delta added, gamma weighted 2.
    let sessions = runs.into_iter().map(|r| r.session).collect();
    let load = Load::start(&client, sessions, THINK);
    load.wait_iterations(2, PHASE_LIMIT).await;
    std::fs::write(
        &stack.gateway.path,
        composed_config(&next, &["alpha", "gamma", "delta"]),
    )
    .unwrap();
    stack.gateway.signal("-HUP");
    let mut instances = Vec::new();
    for _ in 0..200 {
        instances = listed(&stack).await;
        if instances == ["alpha", "gamma", "delta"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(instances, ["alpha", "gamma", "delta"], "the reload applied");
    let reloaded = load.next_phase();
    load.wait_iterations(6, PHASE_LIMIT).await;
    let runs = load.stop().await;
    let failed = failures(&runs);
    assert!(
        failed.is_empty(),
        "errors or stale reads across the reload: {failed:#?}"
    );
    let lost = lost_writes(&client, &runs).await;
    assert!(
        lost.is_empty(),
        "acknowledged writes lost across the reload: {lost:#?}"
    );
    let after: Vec<_> = served_in_phase(&runs, reloaded);
    let moved_by_reload = runs
        .iter()
        .zip(&after)
        .filter(|(run, served)| served.keys().any(|i| *i != run.session.primary))
        .count();
    let on_delta = after.iter().filter(|s| s.contains_key("delta")).count();
    eprintln!(
        "after the reload: {moved_by_reload} of {SESSIONS} sessions served elsewhere than their first primary, \
         {on_delta} reached delta"
    );
    assert!(
        after.iter().all(|s| !s.contains_key(victim)),
        "nothing reaches a removed instance"
    );
    drop(delta);
}

/// Waits until `done` holds, at most 30 s.
async fn wait_for(done: impl Fn() -> bool, what: &str) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 30 s");
}
