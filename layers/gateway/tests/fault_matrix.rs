//! The fault matrix of the composed stack (see `support::stack`): the
//! gateway binary in front of three instance processes over a Redis
//! Cluster, under a closed-loop load of idempotent requests (each session
//! sets its counter with `PUT`, then reads it with `GET`).
//!
//! One test per fault. Each measures its row (requests, client-visible
//! errors, acknowledged writes that do not read back, time to recovery;
//! see `support::fault`), prints it, writes it for `RELIABILITY.md` when
//! `FORESIGHT_RELIABILITY_OUT` is set (`layers/gateway/tests/reliability.sh`),
//! and asserts what the stack guarantees for that fault. Waits are counted
//! in iterations of the load, bounded in time; durations are measured and
//! reported, never asserted.

mod support;

use std::time::Duration;

use foresight_testkit::process::Signal;
use foresight_testkit::reliability::{Recovery, Row};
use support::Gateway;
use support::fault::{client_errors, recovery, requests};
use support::instance::REPLICAS_ENV;
use support::load::{Load, SessionRun, failures, lost_writes};
use support::stack::{Stack, UserSession, WebClient, create_sessions};
use tokio::time::Instant;

const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];
const SESSIONS: usize = 30;
const THINK: Duration = Duration::from_millis(50);
/// Bound of each wait on the load; generous for a loaded debug build.
const PHASE_LIMIT: Duration = Duration::from_secs(90);
/// The instance every instance fault hits.
const VICTIM: &str = "beta";

/// The entry point of the instance processes; a no-op in a normal run.
#[test]
fn instance_process() {
    support::instance::serve_if_instance();
}

/// A stack, its client, and a load over fresh sessions that has run three
/// iterations per session, with every instance Healthy.
async fn loaded(env: Vec<(&'static str, String)>) -> (Stack, WebClient, Load) {
    let stack = Stack::start_with("instance_process", &NAMES, env).await;
    let client = WebClient::new(stack.gateway.public, Duration::from_secs(30));
    let sessions = create_sessions(&client, &stack.members, SESSIONS).await;
    let load = Load::start(&client, sessions, THINK);
    load.wait_iterations(3, PHASE_LIMIT).await;
    stack.wait_all_healthy(PHASE_LIMIT).await;
    (stack, client, load)
}

/// The row of `runs`, with acknowledged writes read back through `client`.
async fn row(
    order: u8,
    fault: &'static str,
    runs: &[SessionRun],
    client: &WebClient,
    since: Instant,
    notes: String,
) -> (Row, Vec<String>) {
    let lost = lost_writes(client, runs).await;
    let row = Row {
        order,
        fault,
        requests: requests(runs),
        client_errors: client_errors(runs),
        acknowledged_lost: Some((lost.len(), runs.len())),
        recovery: recovery(runs, since).map_or(Recovery::NotWithinRun, Recovery::After),
        notes,
    };
    row.emit();
    (row, lost)
}

/// Sessions whose primary is `instance`.
fn on(runs: &[SessionRun], instance: &str) -> usize {
    runs.iter()
        .filter(|r| r.session.primary == instance)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_sigkill() {
    let (mut stack, client, load) = loaded(Vec::new()).await;
    load.next_phase();
    let since = Instant::now();
    let victim = stack.index_of(VICTIM);
    stack.instances[victim].kill();
    load.wait_iterations(5, PHASE_LIMIT).await;
    let runs = load.stop().await;
    let notes = format!(
        "{} sessions on the killed instance; recovery from the kill",
        on(&runs, VICTIM)
    );
    let (row, lost) = row(1, "Primary SIGKILL", &runs, &client, since, notes).await;
    assert_eq!(failures(&runs), Vec::<String>::new(), "{row:?}");
    assert_eq!(lost, Vec::<String>::new(), "{row:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_sigstop_then_sigcont() {
    let (stack, client, load) = loaded(Vec::new()).await;
    load.next_phase();
    let since = Instant::now();
    let victim = stack.instance(VICTIM);
    victim.signal(Signal::Stop);
    load.wait_iterations(5, PHASE_LIMIT).await;
    victim.signal(Signal::Cont);
    load.next_phase();
    load.wait_iterations(5, PHASE_LIMIT).await;
    let runs = load.stop().await;
    let notes = format!(
        "{} sessions on the stopped instance, stopped for 5 iterations of every session; \
         recovery from the SIGSTOP",
        on(&runs, VICTIM)
    );
    let (row, lost) = row(
        2,
        "Primary SIGSTOP, then SIGCONT",
        &runs,
        &client,
        since,
        notes,
    )
    .await;
    assert_eq!(failures(&runs), Vec::<String>::new(), "{row:?}");
    assert_eq!(lost, Vec::<String>::new(), "{row:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_restart() {
    let (mut stack, client, load) = loaded(Vec::new()).await;
    // The new process takes the same public address.
    let text = std::fs::read_to_string(&stack.gateway.path)
        .unwrap()
        .replacen(
            "public = \"127.0.0.1:0\"",
            &format!("public = \"{}\"", stack.gateway.public),
            1,
        );
    load.next_phase();
    let since = Instant::now();
    stack.gateway.signal("-TERM");
    let exit = tokio::time::timeout(PHASE_LIMIT, stack.gateway.child.wait())
        .await
        .expect("the gateway drains and exits")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    stack.gateway = Gateway::start(&text).await;
    let restarted = since.elapsed();
    load.wait_iterations(5, PHASE_LIMIT).await;
    let runs = load.stop().await;
    // Two ways a request fails across a restart: no gateway listens
    // (connection refused), or the draining gateway closed the keep-alive
    // connection the request was just sent on (the connection ends, or is
    // reset, before any answer). Never an error status or a timeout: the
    // drain finishes what it reads.
    let errors: Vec<&String> = runs
        .iter()
        .flat_map(|r| &r.errors)
        .map(|(_, e)| e)
        .collect();
    let refused = errors
        .iter()
        .filter(|e| e.contains("ConnectionRefused"))
        .count();
    let closed = errors
        .iter()
        .filter(|e| e.contains("IncompleteMessage") || e.contains("ConnectionReset"))
        .count();
    let notes = format!(
        "SIGTERM (drain), then a new process on the same address {:.2} s later; \
         errors: {refused} connections refused in between, {closed} requests sent on a \
         keep-alive connection as the draining gateway closed (or reset) it; \
         recovery from the SIGTERM",
        restarted.as_secs_f64()
    );
    let (row, lost) = row(3, "Gateway restart", &runs, &client, since, notes).await;
    assert_eq!(
        refused + closed,
        errors.len(),
        "failures other than a refused or closed connection: {errors:?}"
    );
    // The sessions are in the store: a restart loses none of them.
    assert_eq!(lost, Vec::<String>::new(), "{row:?}");
    let stale: Vec<_> = runs.iter().flat_map(|r| &r.stale).collect();
    assert!(stale.is_empty(), "{stale:?}");
}

/// The Redis key of `session`'s record.
fn record_key(session: &UserSession) -> String {
    let id = session.cookie.split_once('=').unwrap().1;
    format!("foresight:session:{{{id}}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_master_kill() {
    let (mut stack, client, load) = loaded(vec![(REPLICAS_ENV, "1".into())]).await;
    // The master of the first session's record, whichever it is.
    let key = {
        let runs_probe = create_sessions(&client, &stack.members, 1).await;
        record_key(&runs_probe[0])
    };
    load.next_phase();
    let since = Instant::now();
    let old = tokio::task::block_in_place(|| stack.cluster.kill_master_of(&key));
    let promoted = tokio::task::block_in_place(|| stack.cluster.wait_for_failover(&key, old));
    let failover = since.elapsed();
    // The promoted replica has no replica of its own, so `WAIT 1` fails
    // there until the old master comes back as its replica.
    tokio::task::block_in_place(|| {
        stack.cluster.node_mut(old).restart();
        stack.cluster.wait_ready();
    });
    let rejoined = since.elapsed();
    load.next_phase();
    load.wait_iterations(5, PHASE_LIMIT).await;
    let runs = load.stop().await;
    let killed_slots = runs
        .iter()
        .filter(|r| stack.cluster.master_of(&record_key(&r.session)) == Some(promoted))
        .count();
    let notes = format!(
        "writes acknowledged after `WAIT 1`; {killed_slots} sessions on the killed master; \
         its replica promoted {:.2} s after the kill, the old master restarted and in sync \
         as its replica at {:.2} s (their sessions fail closed until then: 503); \
         recovery from the kill",
        failover.as_secs_f64(),
        rejoined.as_secs_f64()
    );
    let (row, lost) = row(4, "Redis Cluster master kill", &runs, &client, since, notes).await;
    assert_eq!(
        lost,
        Vec::<String>::new(),
        "acknowledged writes lost: {row:?}"
    );
    let stale: Vec<_> = runs.iter().flat_map(|r| &r.stale).collect();
    assert!(stale.is_empty(), "{stale:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_for_10_s() {
    let (stack, client, load) = loaded(vec![(REPLICAS_ENV, "1".into())]).await;
    let pids: Vec<String> = stack
        .cluster
        .nodes()
        .iter()
        .map(|n| n.info("server", "process_id").expect("a node's pid"))
        .collect();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .arg(name)
            .args(&pids)
            .status()
            .unwrap();
        assert!(status.success());
    };
    load.next_phase();
    signal("-STOP");
    // The fault's length, by definition of the row.
    tokio::time::sleep(Duration::from_secs(10)).await;
    signal("-CONT");
    load.next_phase();
    let since = Instant::now();
    load.wait_iterations(5, PHASE_LIMIT).await;
    let runs = load.stop().await;
    let notes = "every node SIGSTOPped for 10 s; errors are 503s while it is out; \
                 recovery from the SIGCONT"
        .to_owned();
    let (row, lost) = row(
        5,
        "Redis unreachable for 10 s",
        &runs,
        &client,
        since,
        notes,
    )
    .await;
    assert_eq!(
        lost,
        Vec::<String>::new(),
        "acknowledged writes lost: {row:?}"
    );
    let stale: Vec<_> = runs.iter().flat_map(|r| &r.stale).collect();
    assert!(stale.is_empty(), "{stale:?}");
    let unexpected: Vec<_> = runs
        .iter()
        .flat_map(|r| &r.errors)
        .filter(|(_, e)| !e.contains("503"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "errors other than 503: {unexpected:?}"
    );
}
