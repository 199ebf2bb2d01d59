//! A closed-loop load of idempotent requests over the composed stack:
//! each session sets its `n` to the next value (`PUT`, idempotent) and reads
//! it back (`GET`), with a short think time, until told to stop. Every
//! answer is recorded with the phase it arrived in (the test advances the
//! phase at each fault), so a test can ask where a session was served
//! before and after a fault, and what its cache did.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use tokio::time::Instant;

use super::stack::{UserSession, WebClient};

/// One answer of the load.
#[derive(Debug, Clone)]
pub struct Served {
    /// When the answer arrived.
    pub at: Instant,
    /// The phase when the answer arrived.
    pub phase: u64,
    pub method: Method,
    pub instance: String,
    pub hits: u64,
    pub misses: u64,
    /// 0 for a first attempt, more for a replay.
    pub attempt: u64,
}

/// What one session saw.
#[derive(Debug, Clone)]
pub struct SessionRun {
    pub session: UserSession,
    /// Every successful answer, in order.
    pub served: Vec<Served>,
    /// Client-visible errors: failed exchanges and statuses other than 200,
    /// with when they were seen.
    pub errors: Vec<(Instant, String)>,
    /// Reads that returned neither the session's last acknowledged write
    /// nor a later write whose outcome the client does not know.
    pub stale: Vec<(Instant, String)>,
}

/// A running load: one task per session.
pub struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicU64>,
    /// Iterations (a write and a read) finished, per session.
    progress: Arc<Vec<AtomicU64>>,
    tasks: Vec<tokio::task::JoinHandle<SessionRun>>,
}

impl Load {
    /// Starts the loop for every session, in phase 0.
    pub fn start(client: &WebClient, sessions: Vec<UserSession>, think: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicU64::new(0));
        let progress: Arc<Vec<AtomicU64>> =
            Arc::new(sessions.iter().map(|_| AtomicU64::new(0)).collect());
        let count = sessions.len();
        let tasks = sessions
            .into_iter()
            .enumerate()
            .map(|(i, session)| {
                let (client, stop, phase, progress) = (
                    client.clone(),
                    stop.clone(),
                    phase.clone(),
                    progress.clone(),
                );
                // Starts spread over one think time, not in one burst.
                let offset = think.mul_f64(i as f64 / count as f64);
                tokio::spawn(async move {
                    tokio::time::sleep(offset).await;
                    let mut run = SessionRun {
                        session,
                        served: Vec::new(),
                        errors: Vec::new(),
                        stale: Vec::new(),
                    };
                    while !stop.load(Ordering::Relaxed) {
                        iterate(&client, &mut run, &phase).await;
                        progress[i].fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(think).await;
                    }
                    run
                })
            })
            .collect();
        Self {
            stop,
            phase,
            progress,
            tasks,
        }
    }

    /// Moves to the next phase (call it right after a fault); returns it.
    pub fn next_phase(&self) -> u64 {
        self.phase.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Waits until every session finished `iterations` more iterations,
    /// counted from now, at most `limit`; panics past it.
    pub async fn wait_iterations(&self, iterations: u64, limit: Duration) {
        let start: Vec<u64> = self
            .progress
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .collect();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let behind = self
                .progress
                .iter()
                .zip(&start)
                .filter(|(p, s)| p.load(Ordering::Relaxed) < *s + iterations)
                .count();
            if behind == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{behind} sessions did not finish {iterations} iterations within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the loop and returns what each session saw.
    pub async fn stop(self) -> Vec<SessionRun> {
        self.stop.store(true, Ordering::Relaxed);
        let mut runs = Vec::new();
        for task in self.tasks {
            runs.push(task.await.unwrap());
        }
        runs
    }
}

/// One write and one read of the session's `n`.
async fn iterate(client: &WebClient, run: &mut SessionRun, phase: &AtomicU64) {
    let next = run.session.acknowledged + 1;
    let cookie = run.session.cookie.clone();
    match client.put_n(Some(&cookie), next).await {
        Ok(reply) if reply.status == StatusCode::OK => {
            run.session.acknowledged = next;
            run.session.unconfirmed = false;
            run.served.push(served(Method::PUT, &reply, phase));
        }
        Ok(reply) => {
            run.session.unconfirmed = true;
            let error = format!("PUT {next}: {} {}", reply.status, reply.body);
            run.errors.push((Instant::now(), error));
        }
        Err(e) => {
            run.session.unconfirmed = true;
            run.errors
                .push((Instant::now(), format!("PUT {next}: {e}")));
        }
    }
    match client.get_n(&cookie).await {
        Ok(reply) if reply.status == StatusCode::OK => {
            if !run.session.holds(&reply.body) {
                run.stale.push((
                    Instant::now(),
                    format!(
                        "read {} after {} was acknowledged, from {}",
                        reply.body, run.session.acknowledged, reply.instance
                    ),
                ));
            }
            run.served.push(served(Method::GET, &reply, phase));
        }
        Ok(reply) => run.errors.push((
            Instant::now(),
            format!("GET: {} {}", reply.status, reply.body),
        )),
        Err(e) => run.errors.push((Instant::now(), format!("GET: {e}"))),
    }
}

fn served(method: Method, reply: &super::stack::Reply, phase: &AtomicU64) -> Served {
    Served {
        at: Instant::now(),
        phase: phase.load(Ordering::SeqCst),
        method,
        instance: reply.instance.clone(),
        hits: reply.hits,
        misses: reply.misses,
        attempt: reply.attempt,
    }
}

/// Every client-visible error and stale read of `runs`, one per line.
pub fn failures(runs: &[SessionRun]) -> Vec<String> {
    runs.iter()
        .flat_map(|r| {
            let cookie = &r.session.cookie;
            r.errors
                .iter()
                .chain(&r.stale)
                .map(move |(_, e)| format!("{cookie}: {e}"))
        })
        .collect()
}

/// Reads every session of `runs` back through the gateway: one line per
/// session whose last acknowledged write is not what it reads (a later
/// write whose outcome is unknown may be), or whose read fails.
pub async fn lost_writes(client: &WebClient, runs: &[SessionRun]) -> Vec<String> {
    let mut lost = Vec::new();
    for run in runs {
        let session = &run.session;
        match client.get_n(&session.cookie).await {
            Ok(reply) if reply.status == StatusCode::OK && session.holds(&reply.body) => {}
            Ok(reply) => lost.push(format!(
                "{}: acknowledged {}, read {} {}",
                session.cookie, session.acknowledged, reply.status, reply.body
            )),
            Err(e) => lost.push(format!("{}: read failed: {e}", session.cookie)),
        }
    }
    lost
}
