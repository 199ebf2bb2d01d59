//! Fault tests with three instances as separate OS processes on loopback.
//!
//! The instance processes are this test binary run again as
//! [`instance_process`] (see `foresight_testkit::process`): a small hyper
//! server that answers after a configurable delay. The tests drive a
//! closed-loop load of 200 sessions through Shard → Failover → Shadow →
//! Pool (a hyper-util client per instance), then kill, stop or slow down the
//! primary of half the sessions, and count what the clients saw. Every loop
//! is bounded in count and time; nothing listens beyond 127.0.0.1.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use foresight_core::key::HeaderKey;
use foresight_core::{BoxError, ClientKey, HealthState, Topology};
use foresight_failover::{FailoverStats, HealthFailoverLayer, Hedging};
use foresight_shadow::ShadowWriteLayer;
use foresight_shard::{DEFAULT_SEED, ShardLayer};
use foresight_testkit::keys;
use foresight_testkit::process::{self, InstanceProcess, Signal};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Instant;
use tower::{Service, ServiceBuilder};

use self::support::{Load, Sample, drive, pool, topology, watch};

mod support;

/// The scenarios run one at a time: each starts three processes, and two
/// cores shared by two scenarios would measure each other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const DELAY_ENV: &str = "FORESIGHT_FAULT_DELAY_US";
/// `<every>,<us>`: one request in `every` takes `us` more (a pause).
const STALL_ENV: &str = "FORESIGHT_FAULT_STALL";
const SESSIONS: usize = 200;
const THINK: Duration = Duration::from_millis(50);
/// Per-session request bound, on top of the time bound.
const MAX_PER_SESSION: usize = 2_000;

/// The instance server, when this binary runs as an instance process; a
/// no-op in a normal test run.
#[test]
fn instance_process() {
    let Some(id) = process::instance_name() else {
        return;
    };
    let delay_us: u64 = std::env::var(DELAY_ENV)
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    let stall = std::env::var(STALL_ENV).ok().and_then(|s| {
        let (every, us) = s.split_once(',')?;
        Some(Stall {
            every: every.parse().ok()?,
            extra: Duration::from_micros(us.parse().ok()?),
        })
    });
    let listener = process::listen();
    listener.set_nonblocking(true).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(serve(listener, id, delay_us, stall));
}

/// One request in `every` takes `extra` longer: a pause in an otherwise
/// healthy instance.
#[derive(Clone, Copy)]
struct Stall {
    every: u64,
    extra: Duration,
}

async fn serve(listener: std::net::TcpListener, id: String, delay_us: u64, stall: Option<Stall>) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let served = Arc::new(AtomicU64::new(0));
    let delay = Arc::new(AtomicU64::new(delay_us));
    let id = Bytes::from(id);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let delay = delay.clone();
        let served = served.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let delay = delay.clone();
                let served = served.clone();
                let id = id.clone();
                async move {
                    if request.uri().path() == "/admin/delay" {
                        let us = request
                            .uri()
                            .query()
                            .and_then(|q| q.strip_prefix("us="))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        delay.store(us, Ordering::Relaxed);
                        return Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok"))));
                    }
                    let _ = request.into_body().collect().await;
                    let mut wait = Duration::from_micros(delay.load(Ordering::Relaxed));
                    let n = served.fetch_add(1, Ordering::Relaxed);
                    if let Some(stall) = stall
                        && n % stall.every == stall.every - 1
                    {
                        wait += stall.extra;
                    }
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    Ok(Response::new(Full::new(id)))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn spawn_instances(delay_us: u64) -> Vec<InstanceProcess> {
    spawn_stalling_instances(delay_us, "")
}

/// Instances that also stall as `stall` (`<every>,<us>`, or empty) says.
fn spawn_stalling_instances(delay_us: u64, stall: &str) -> Vec<InstanceProcess> {
    let delay_us = delay_us.to_string();
    ["i0", "i1", "i2"]
        .iter()
        .map(|id| {
            InstanceProcess::spawn(
                "instance_process",
                id,
                &[(DELAY_ENV, &delay_us), (STALL_ENV, stall)],
            )
        })
        .collect()
}

/// 200 session keys: half of them with `victim` as their primary.
/// The closed loop of these tests: `SESSIONS` sessions, `THINK` between a
/// response and the next request, for `run`.
fn closed_loop(run: Duration) -> Load {
    Load {
        think: THINK,
        run,
        stop: None,
        max_per_session: MAX_PER_SESSION,
    }
}

fn sessions(topology: &Topology, victim: &str) -> Vec<String> {
    keys::half_on_victim(topology, victim, "session", DEFAULT_SEED, SESSIONS)
}

struct Summary {
    requests: usize,
    errors: usize,
    rate: f64,
    p50: Duration,
    p99: Duration,
}

fn summarise(samples: &[Sample], run: Duration) -> Summary {
    let mut latencies: Vec<_> = samples.iter().map(|s| s.latency).collect();
    latencies.sort();
    Summary {
        requests: samples.len(),
        errors: samples.iter().filter(|s| !s.ok).count(),
        rate: samples.len() as f64 / run.as_secs_f64(),
        p50: latencies
            .get(latencies.len() / 2)
            .copied()
            .unwrap_or_default(),
        p99: latencies
            .get(latencies.len() * 99 / 100)
            .copied()
            .unwrap_or_default(),
    }
}

/// Writes the samples as CSV when `FORESIGHT_FAULT_CSV_DIR` is set.
fn write_timeline(name: &str, samples: &[Sample], marks: &[(&str, Duration)]) {
    let Ok(dir) = std::env::var("FORESIGHT_FAULT_CSV_DIR") else {
        return;
    };
    let mut csv = String::from("at_ms,latency_ms,ok,served_by,session\n");
    for s in samples {
        csv.push_str(&format!(
            "{:.3},{:.3},{},{},{}\n",
            s.at.as_secs_f64() * 1e3,
            s.latency.as_secs_f64() * 1e3,
            u8::from(s.ok),
            s.served_by.as_ref().map_or("-", |i| i.as_str()),
            s.session
        ));
    }
    for (mark, at) in marks {
        csv.push_str(&format!("# {mark} at {:.3} ms\n", at.as_secs_f64() * 1e3));
    }
    std::fs::write(format!("{dir}/{name}.csv"), csv).unwrap();
}

/// Waits (at most 3 s) until `victim` is Healthy. The start of a run (200
/// sessions at once on a shared machine) may have slowed it already; a
/// fault is injected into a Healthy victim, so that what follows measures
/// the fault alone.
async fn until_healthy(topology: &Topology, victim: &str, start: Instant) {
    let healthy = watch(topology, victim, start, Duration::from_secs(3), |s| {
        s == HealthState::Healthy
    })
    .await;
    assert!(healthy.is_some(), "the victim never became Healthy");
}

fn stack(
    topology: &Topology,
    failover: &HealthFailoverLayer,
    shadow: &ShadowWriteLayer,
) -> impl Service<Request<Empty<Bytes>>, Response = Response<Incoming>, Error = BoxError, Future: Send>
+ Clone
+ Send
+ 'static {
    ServiceBuilder::new()
        .layer(ShardLayer::new(
            topology.clone(),
            HeaderKey::new("x-session"),
        ))
        .layer(failover.clone())
        .layer(shadow.clone())
        .service(pool(topology))
}

fn print_stats(name: &str, summary: &Summary, stats: FailoverStats) {
    eprintln!(
        "{name}: {} requests, {:.0} req/s, {} client errors, p99 {:?}; {stats:?}",
        summary.requests, summary.rate, summary.errors, summary.p99
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_primary_loses_no_idempotent_request() {
    let _serial = SERIAL.lock().await;
    const RUN: Duration = Duration::from_millis(2_500);
    const KILL_AT: Duration = Duration::from_millis(1_000);
    let mut instances = spawn_instances(1_000);
    let topology = topology(&instances);
    let victim = instances[0].name.clone();
    let keys = sessions(&topology, &victim);
    let failover = HealthFailoverLayer::new(topology.clone());
    let shadow = ShadowWriteLayer::new(topology.clone());
    let service = stack(&topology, &failover, &shadow);

    let start = Instant::now();
    let load = tokio::spawn(drive(service, keys.clone(), start, closed_loop(RUN)));
    tokio::time::sleep_until(start + KILL_AT).await;
    instances[0].kill();
    let killed = start.elapsed();
    let before = failover.stats();
    let ejected = watch(&topology, &victim, start, Duration::from_secs(2), |s| {
        s == HealthState::Ejected
    })
    .await;
    let at_ejection = failover.stats();
    let samples = load.await.unwrap();
    let summary = summarise(&samples, RUN);
    print_stats("kill with failover", &summary, failover.stats());
    eprintln!(
        "kill: killed at {killed:?}, ejected at {ejected:?}, failed attempts before ejection ≈ {}",
        (at_ejection.replays + at_ejection.timeouts) - (before.replays + before.timeouts)
    );
    write_timeline("kill_with_failover", &samples, &[("kill", killed)]);
    let (with_layer, killed_with) = (samples.clone(), killed);

    assert_eq!(summary.errors, 0, "client-visible errors");
    assert!(ejected.is_some(), "the dead primary was not ejected");
    assert!(failover.stats().ejections >= 1);
    // Nothing was answered by the dead instance after the kill.
    assert!(
        samples
            .iter()
            .filter(|s| s.at > killed)
            .all(|s| s.served_by.as_ref().is_none_or(|i| i.as_str() != victim))
    );
    drop(instances);

    // The same run without the failover layer, for comparison.
    let mut instances = spawn_instances(1_000);
    let topology = self::topology(&instances);
    let keys = sessions(&topology, &instances[0].name);
    let bare = ServiceBuilder::new()
        .layer(ShardLayer::new(
            topology.clone(),
            HeaderKey::new("x-session"),
        ))
        .service(pool(&topology));
    let start = Instant::now();
    let load = tokio::spawn(drive(bare, keys, start, closed_loop(RUN)));
    tokio::time::sleep_until(start + KILL_AT).await;
    instances[0].kill();
    let killed = start.elapsed();
    let samples = load.await.unwrap();
    let bare = summarise(&samples, RUN);
    eprintln!(
        "kill without failover: {} requests, {:.0} req/s, {} client errors",
        bare.requests, bare.rate, bare.errors
    );
    write_timeline("kill_without_failover", &samples, &[("kill", killed)]);
    plot_kill(&with_layer, killed_with, &samples, killed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_primary_is_ejected_then_probed_and_readmitted() {
    let _serial = SERIAL.lock().await;
    const RUN: Duration = Duration::from_millis(6_000);
    const STOP_AT: Duration = Duration::from_millis(1_000);
    const STOPPED_FOR: Duration = Duration::from_millis(1_000);
    const SETTLE: Duration = Duration::from_millis(1_200);
    let instances = spawn_instances(1_000);
    let topology = topology(&instances);
    let victim = instances[0].name.clone();
    let keys = sessions(&topology, &victim);
    let failover = HealthFailoverLayer::new(topology.clone())
        .with_ejection_backoff(Duration::from_millis(300), Duration::from_secs(2));
    let shadow = ShadowWriteLayer::new(topology.clone());
    let service = stack(&topology, &failover, &shadow);

    let start = Instant::now();
    let load = tokio::spawn(drive(service, keys.clone(), start, closed_loop(RUN)));
    tokio::time::sleep_until(start + STOP_AT).await;
    until_healthy(&topology, &victim, start).await;
    instances[0].signal(Signal::Stop);
    let stopped = start.elapsed();
    let ejected = watch(&topology, &victim, start, Duration::from_secs(1), |s| {
        s != HealthState::Healthy
    })
    .await;
    tokio::time::sleep_until(start + stopped + STOPPED_FOR).await;
    instances[0].signal(Signal::Cont);
    let resumed = start.elapsed();
    let readmitted = watch(&topology, &victim, start, Duration::from_secs(1), |s| {
        s == HealthState::Healthy
    })
    .await;
    let samples = load.await.unwrap();
    let summary = summarise(&samples, RUN);
    print_stats("stop/cont", &summary, failover.stats());
    eprintln!(
        "stop: stopped at {stopped:?}, out of rotation at {ejected:?}, resumed at {resumed:?}, readmitted at {readmitted:?}"
    );
    write_timeline(
        "stop_cont",
        &samples,
        &[("stop", stopped), ("cont", resumed)],
    );

    assert_eq!(summary.errors, 0, "client-visible errors");
    assert!(ejected.is_some(), "the stopped primary stayed in rotation");
    assert!(failover.stats().ejections >= 1);
    assert!(
        readmitted.is_some(),
        "the resumed primary was not readmitted"
    );
    assert!(failover.stats().readmissions >= 1);
    // Sessions whose first choice is the victim are back on it, as HRW says;
    // the others never moved.
    let late: Vec<_> = samples.iter().filter(|s| s.at > resumed + SETTLE).collect();
    let back = late
        .iter()
        .filter(|s| s.session < SESSIONS / 2)
        .filter(|s| s.served_by.as_ref().is_some_and(|i| i.as_str() == victim))
        .count();
    let victim_sessions = late.iter().filter(|s| s.session < SESSIONS / 2).count();
    eprintln!(
        "stop: after settling, {back} of {victim_sessions} requests of the victim's sessions served by it"
    );
    assert!(back > 0, "no session moved back to the readmitted instance");
    assert!(
        late.iter()
            .filter(|s| s.session >= SESSIONS / 2)
            .all(|s| s.served_by.as_ref().is_none_or(|i| i.as_str() != victim)),
        "a session moved to an instance that is not its first choice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_primary_is_degraded_and_drained_before_any_error() {
    let _serial = SERIAL.lock().await;
    const RUN: Duration = Duration::from_millis(4_000);
    const SLOW_AT: Duration = Duration::from_millis(1_000);
    // 5 ms of work per request, so that scheduling noise on a loaded
    // machine stays well under the injected 10x.
    let instances = spawn_instances(5_000);
    let topology = topology(&instances);
    let victim = instances[0].name.clone();
    let keys = sessions(&topology, &victim);
    // Probed two seconds after degrading, so the window checked below
    // holds no probe.
    let failover = HealthFailoverLayer::new(topology.clone())
        .with_drain(foresight_failover::DEFAULT_DRAIN, Duration::from_secs(2));
    let shadow = ShadowWriteLayer::new(topology.clone());
    let service = stack(&topology, &failover, &shadow);

    let start = Instant::now();
    let load = tokio::spawn(drive(service, keys, start, closed_loop(RUN)));
    tokio::time::sleep_until(start + SLOW_AT).await;
    until_healthy(&topology, &victim, start).await;
    // Ten times the latency on the victim.
    let admin: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let uri = format!("http://{}/admin/delay?us=50000", instances[0].addr);
    admin.get(uri.parse().unwrap()).await.unwrap();
    let slowed = start.elapsed();
    let degraded = watch(&topology, &victim, start, Duration::from_secs(1), |s| {
        s != HealthState::Healthy
    })
    .await;
    let samples = load.await.unwrap();
    let summary = summarise(&samples, RUN);
    print_stats("slow primary", &summary, failover.stats());
    eprintln!("slow: slowed at {slowed:?}, degraded at {degraded:?}");
    write_timeline("slow_primary", &samples, &[("slow", slowed)]);

    assert_eq!(summary.errors, 0, "client-visible errors");
    let degraded = degraded.expect("the slow primary was not detected");
    assert!(failover.stats().degradations >= 1);
    // Once drained, and before the first probe, the victim's sessions are
    // served by their secondaries.
    // Once drained, the victim's sessions are served by their secondaries;
    // at most one probe (every 2 s here) reaches the victim.
    let from = slowed.max(degraded) + Duration::from_millis(400);
    let to = from + Duration::from_millis(1_000);
    let window: Vec<_> = samples
        .iter()
        .filter(|s| s.at > from && s.at < to && s.session < SESSIONS / 2)
        .collect();
    let stayed = window
        .iter()
        .filter(|s| s.served_by.as_ref().is_some_and(|i| i.as_str() == victim))
        .count();
    eprintln!(
        "slow: {stayed} of {} requests of the victim's sessions still on it after the drain",
        window.len()
    );
    assert!(!window.is_empty());
    assert!(
        stayed <= 1,
        "{stayed} requests still served by the degraded primary"
    );
}

/// Draws the latency of every request around the kill, with and without
/// the failover layer, as SVG into `FORESIGHT_FAULT_TIMELINE_DIR`.
fn plot_kill(with: &[Sample], killed_with: Duration, without: &[Sample], killed_without: Duration) {
    use plotters::prelude::*;

    let Ok(dir) = std::env::var("FORESIGHT_FAULT_TIMELINE_DIR") else {
        return;
    };
    let path = format!("{dir}/failover_timeline.svg");
    let root = SVGBackend::new(&path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).unwrap();
    let panels = root.split_evenly((2, 1));
    let runs = [
        ("with HealthFailoverLayer", with, killed_with),
        ("without HealthFailoverLayer", without, killed_without),
    ];
    for (panel, (title, samples, killed)) in panels.iter().zip(runs) {
        // Relative to the kill, from 500 ms before to 1 s after.
        let points: Vec<(f64, f64, bool)> = samples
            .iter()
            .map(|s| {
                (
                    (s.at.as_secs_f64() - killed.as_secs_f64()) * 1e3,
                    s.latency.as_secs_f64() * 1e3,
                    s.ok,
                )
            })
            .filter(|(t, _, _)| (-500.0..=1000.0).contains(t))
            .collect();
        let errors = points.iter().filter(|p| !p.2).count();
        let top = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("{title}: {} requests, {errors} client errors", points.len()),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(-500.0..1000.0, 0.0..top)
            .unwrap();
        chart
            .configure_mesh()
            .x_desc("ms since SIGKILL of the primary of half the sessions")
            .y_desc("latency (ms)")
            .draw()
            .unwrap();
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.2)
                    .map(|&(t, l, _)| Circle::new((t, l), 1, BLUE.filled())),
            )
            .unwrap()
            .label("answered")
            .legend(|(x, y)| Circle::new((x, y), 3, BLUE.filled()));
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| !p.2)
                    .map(|&(t, l, _)| Cross::new((t, l), 3, RED)),
            )
            .unwrap()
            .label("client error")
            .legend(|(x, y)| Cross::new((x, y), 3, RED));
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (0.0, top)], BLACK))
            .unwrap();
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .unwrap();
    }
    root.present().unwrap();
}

/// 200 session keys whose secondary is `secondary` (and primary is not).
fn sessions_with_secondary(topology: &Topology, secondary: &str) -> Vec<String> {
    (0..1_000_000)
        .map(|n| format!("session-{n}"))
        .filter(|key| {
            let ranked = topology.rank(&ClientKey::from(key.as_str()), DEFAULT_SEED, 2);
            ranked[1].as_str() == secondary
        })
        .take(SESSIONS)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_secondary_does_not_slow_the_primary() {
    let _serial = SERIAL.lock().await;
    const RUN: Duration = Duration::from_millis(1_000);
    let instances = spawn_instances(1_000);
    let topology = topology(&instances);
    let stalled = instances[2].name.clone();
    let keys = sessions_with_secondary(&topology, &stalled);
    instances[2].signal(Signal::Stop);

    let mut runs = [Vec::new(), Vec::new()];
    // Alternating short runs, so that drift on a shared machine hits both.
    for sampling in [0.0, 1.0, 0.0, 1.0, 0.0, 1.0] {
        // Shard → Shadow → Pool: the primary's latency with and without
        // copies, and nothing else changing between the runs.
        let shadow = ShadowWriteLayer::new(topology.clone()).with_sampling(sampling);
        let service = ServiceBuilder::new()
            .layer(ShardLayer::new(
                topology.clone(),
                HeaderKey::new("x-session"),
            ))
            .layer(shadow.clone())
            .service(pool(&topology));
        let start = Instant::now();
        let samples = drive(service, keys.clone(), start, closed_loop(RUN)).await;
        let summary = summarise(&samples, RUN);
        let in_flight = shadow.in_flight(&stalled.as_str().into()).unwrap();
        eprintln!(
            "stalled secondary, shadow sampling {sampling}: {} requests, {:.0} req/s, {} errors, p99 {:?}, shadows in flight at the end {in_flight}, {:?}",
            summary.requests,
            summary.rate,
            summary.errors,
            summary.p99,
            shadow.stats()
        );
        assert_eq!(summary.errors, 0, "client-visible errors");
        // Bounded: never more than the limit in flight, the rest dropped.
        assert!(in_flight <= foresight_shadow::DEFAULT_MAX_IN_FLIGHT);
        if sampling > 0.0 {
            assert!(shadow.stats().dropped_full > 0, "no shadow drop counted");
        }
        runs[usize::from(sampling > 0.0)].push(summary.p99);
    }
    let median = |runs: &mut Vec<Duration>| {
        runs.sort();
        runs[runs.len() / 2]
    };
    let (without, with) = (median(&mut runs[0]), median(&mut runs[1]));
    eprintln!(
        "stalled secondary: median primary p99 {without:?} without shadows, {with:?} with ({:+.1} %)",
        (with.as_secs_f64() / without.as_secs_f64() - 1.0) * 100.0
    );
    instances[2].signal(Signal::Cont);
}

/// Tail latency of instances that pause now and then (one request in 50
/// takes 50 ms more, on every instance), with and without hedging at the
/// p95. Three alternating runs of each; the medians are printed. Asserted:
/// no client errors, and hedges were sent and won; the latencies are
/// reported, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hedging_cuts_the_tail_of_instances_that_pause() {
    let _serial = SERIAL.lock().await;
    const RUN: Duration = Duration::from_millis(1_500);
    let instances = spawn_stalling_instances(1_000, "50,50000");
    let topology = topology(&instances);
    let keys = sessions(&topology, &instances[0].name);
    let (mut plain, mut hedged) = (Vec::new(), Vec::new());
    for _round in 0..3 {
        for hedging in [false, true] {
            let failover = HealthFailoverLayer::new(topology.clone());
            let failover = if hedging {
                failover.with_hedging(Hedging::after_quantile(0.95))
            } else {
                failover
            };
            let shadow = ShadowWriteLayer::new(topology.clone()).with_sampling(0.0);
            let service = stack(&topology, &failover, &shadow);
            let samples = drive(service, keys.clone(), Instant::now(), closed_loop(RUN)).await;
            let summary = summarise(&samples, RUN);
            let stats = failover.stats();
            print_stats(
                if hedging {
                    "pausing, hedged"
                } else {
                    "pausing, not hedged"
                },
                &summary,
                stats,
            );
            assert_eq!(summary.errors, 0, "client-visible errors");
            if hedging {
                assert!(stats.hedges > 0 && stats.hedge_wins > 0, "{stats:?}");
                hedged.push((summary, stats));
            } else {
                assert_eq!(stats.hedges, 0);
                plain.push((summary, stats));
            }
        }
    }
    let median = |runs: &[(Summary, FailoverStats)], f: &dyn Fn(&Summary) -> f64| {
        let mut values: Vec<f64> = runs.iter().map(|(s, _)| f(s)).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let extra: Vec<f64> = hedged
        .iter()
        .map(|(s, stats)| stats.hedges as f64 / s.requests as f64 * 100.0)
        .collect();
    eprintln!(
        "pausing instances, median of 3: p50 {:.2} ms / {:.2} ms, p99 {:.2} ms / {:.2} ms \
         (not hedged / hedged); hedges {:.1} % of requests",
        median(&plain, &|s| ms(s.p50)),
        median(&hedged, &|s| ms(s.p50)),
        median(&plain, &|s| ms(s.p99)),
        median(&hedged, &|s| ms(s.p99)),
        extra.iter().sum::<f64>() / extra.len() as f64,
    );
}
