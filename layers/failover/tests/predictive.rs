//! Predictive failover: the layer feeds a real [`Forecaster`] from live
//! attempts and moves sessions off an instance whose latency is predicted
//! to cross the SLO, before it does.
//!
//! Two parts. On paused Tokio time, over a `tower-test` mock, the wiring:
//! attempts (cancelled ones too) reach the forecaster, and its prediction
//! moves a key before the ramp reaches the threshold. Then a fault test with
//! three instances as separate OS processes (this test binary run again as
//! [`instance_process`], see `foresight_testkit::process`): 100 sessions,
//! half with the victim as primary; after a warm-up the victim's latency
//! climbs by 1 ms every 200 ms, like a leak, past a 50 ms SLO. The same
//! scenario runs with the forecast on and with the plain reactive layer,
//! and the test prints and compares what the clients saw.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use foresight_core::key::HeaderKey;
use foresight_core::{
    ClientKey, HealthState, InstanceId, InstanceSpec, Ranked, Route, RouteBody, Topology,
};
use foresight_failover::{FailoverStats, HealthFailoverLayer};
use foresight_forecast::model::ModelConfig;
use foresight_forecast::{Forecaster, Signal};
use foresight_shard::{DEFAULT_SEED, ShardLayer};
use foresight_testkit::keys;
use foresight_testkit::process::{self, InstanceProcess};
use http::{Request, Response, Uri};
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_test::mock;

use self::support::{Load, Sample, drive, pool, topology, watch};

mod support;

/// The latency SLO: a response slower than this breaks it.
const SLO: Duration = Duration::from_millis(50);
/// Every instance's latency before the fault: a quarter of the SLO, so that
/// the reactive layer's default (4 × the fleet baseline) degrades an
/// instance about when it crosses the SLO.
const BASE: Duration = Duration::from_micros(12_500);
/// How fast the victim's latency climbs: 1 ms every 200 ms, so that it
/// crosses the SLO 7.5 s after the ramp starts.
const RAMP_US_PER_SEC: u64 = 5_000;
/// How far ahead a predicted crossing moves sessions.
const LEAD: Duration = Duration::from_secs(2);
/// How long the prediction must stay clear before a readmission.
const HOLD: Duration = Duration::from_secs(1);

/// The forecaster of both parts: one step per 100 ms, six lagged changes,
/// twenty horizons (2 s), latency above the SLO is degraded.
fn forecaster_builder() -> foresight_forecast::ForecasterBuilder {
    Forecaster::builder()
        .with_step(Duration::from_millis(100))
        .with_capacity(300)
        .with_model(ModelConfig::default().with_lags(6).with_horizons(20))
        .with_system_sampler(false)
        .with_health(Signal::Latency, SLO.as_secs_f64())
}

// ---------------------------------------------------------------------
// Paused time, over a mock.
// ---------------------------------------------------------------------

type MockBody = RouteBody;

fn abc() -> Topology {
    Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap()
}

fn routed(key: &str) -> Request<Empty<Bytes>> {
    let ranked: Ranked = ["a", "b"].iter().map(|&id| InstanceId::from(id)).collect();
    let mut request = Request::get("/").body(Empty::new()).unwrap();
    request
        .extensions_mut()
        .insert(Route::primary(ClientKey::from(key), ranked).unwrap());
    request
}

/// Answers every request after the latency `latency_of(target)` says, with
/// the target's id as the body.
fn respond(
    mut handle: mock::Handle<Request<MockBody>, Response<String>>,
    latency_of: impl Fn(&str) -> Duration + Send + 'static,
) {
    tokio::spawn(async move {
        while let Some((request, reply)) = handle.next_request().await {
            let target = request.extensions().get::<Route>().unwrap().target.clone();
            let latency = latency_of(target.as_str());
            tokio::spawn(async move {
                tokio::time::sleep(latency).await;
                reply.send_response(Response::new(target.to_string()));
            });
        }
    });
}

#[tokio::test(start_paused = true)]
async fn a_forecast_fed_by_the_layer_moves_a_key_before_the_threshold() {
    let forecaster = forecaster_builder().build().unwrap();
    let layer = HealthFailoverLayer::new(abc())
        .with_forecast(forecaster.clone(), LEAD)
        .with_signal_hold(HOLD);
    let (mock, handle) = mock::pair::<Request<MockBody>, Response<String>>();
    let service = layer.layer(mock);
    // a's latency: flat for 12 s, then +1 ms per 200 ms.
    let origin = Instant::now();
    let ramp_from = Duration::from_secs(12);
    let a_latency = move || {
        let ramp = origin.elapsed().saturating_sub(ramp_from);
        BASE + Duration::from_micros(ramp.as_micros() as u64 * RAMP_US_PER_SEC / 1_000_000)
    };
    respond(
        handle,
        move |target| {
            if target == "a" { a_latency() } else { BASE }
        },
    );

    // Twenty requests per 100 ms step on a key whose primary is a; the
    // forecaster closes a step every 100 ms and retrains every 300 ms.
    let mut moved_at = None;
    for step in 0..250u32 {
        let mut answers = Vec::new();
        for i in 0..20 {
            let call = service.clone().oneshot(routed(&format!("k{i}")));
            answers.push(tokio::spawn(call));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for answer in answers {
            let served = answer.await.unwrap().unwrap().into_body();
            if served != "a" && moved_at.is_none() {
                moved_at = Some((step, a_latency()));
            }
        }
        forecaster.tick();
        if step % 3 == 2 {
            forecaster.retrain_blocking();
        }
        if moved_at.is_some() {
            break;
        }
    }
    let (step, latency) = moved_at.expect("the keys never left a");
    eprintln!("paused: keys left a at step {step}, with a at {latency:?}");
    assert!(latency < SLO, "moved only at {latency:?}");
    // Moved on the ramp, not during the flat warm-up.
    assert!(latency > BASE, "moved at {latency:?}, before the ramp");
    assert_eq!(layer.stats().degradations, 1);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_attempt_is_recorded_with_the_time_it_waited() {
    let forecaster = forecaster_builder().build().unwrap();
    let layer = HealthFailoverLayer::new(abc()).with_forecast(forecaster.clone(), LEAD);
    let (mock, handle) = mock::pair::<Request<MockBody>, Response<String>>();
    let service = layer.layer(mock);
    respond(handle, |_| Duration::from_secs(60));
    let call = service.oneshot(routed("k"));
    // The client gives up after 30 ms: the attempt is dropped, not finished.
    let gave_up = tokio::time::timeout(Duration::from_millis(30), call).await;
    assert!(gave_up.is_err());
    assert_eq!(layer.in_flight(&"a".into()), Some(0));
    forecaster.tick();
    let seen = forecaster
        .instance_forecast(&"a".into(), Duration::ZERO)
        .expect("the cancelled attempt was recorded");
    assert!((seen.mean - 0.030).abs() < 1e-3, "{seen:?}");
}

// ---------------------------------------------------------------------
// OS processes, real sockets.
// ---------------------------------------------------------------------

const BASE_ENV: &str = "FORESIGHT_PREDICTIVE_BASE_US";
const SESSIONS: usize = 100;
/// Think time: about 1,000 requests per second in all, a load a shared
/// 2-core machine carries beside three instance processes.
const THINK: Duration = Duration::from_millis(100);
/// Flat traffic before the ramp: the forecaster needs about 9 s of 100 ms
/// steps before it fits a model.
const WARMUP: Duration = Duration::from_secs(10);
/// How long the ramp runs: the victim ends at 60 ms.
const RAMP_RUN: Duration = Duration::from_millis(9_500);
/// Per-session request bound, on top of the time bound.
const MAX_PER_SESSION: usize = 1_000;

/// The instance server, when this binary runs as an instance process; a
/// no-op in a normal test run. `GET /` answers with the instance's name
/// after the current delay; `GET /admin/ramp?us_per_s=<n>` starts the
/// ramp: from then on the delay grows by `n` µs per second.
#[test]
fn instance_process() {
    let Some(name) = process::instance_name() else {
        return;
    };
    let base_us = std::env::var(BASE_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    process::serve_axum_instance(async move || ramp_app(name, base_us));
}

/// A latency that starts climbing at a fixed rate once told to.
struct Ramp {
    base_us: u64,
    us_per_s: AtomicU64,
    from: OnceLock<std::time::Instant>,
}

impl Ramp {
    fn delay(&self) -> Duration {
        let climbed = self.from.get().map_or(0, |from| {
            from.elapsed().as_micros() as u64 * self.us_per_s.load(Ordering::Relaxed) / 1_000_000
        });
        Duration::from_micros(self.base_us + climbed)
    }
}

fn ramp_app(name: String, base_us: u64) -> axum::Router {
    use axum::routing::get;

    let ramp = Arc::new(Ramp {
        base_us,
        us_per_s: AtomicU64::new(0),
        from: OnceLock::new(),
    });
    let serve = {
        let ramp = ramp.clone();
        move || {
            let delay = ramp.delay();
            let name = name.clone();
            async move {
                tokio::time::sleep(delay).await;
                name
            }
        }
    };
    let start = move |uri: Uri| {
        let rate = uri
            .query()
            .and_then(|q| q.strip_prefix("us_per_s="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        ramp.us_per_s.store(rate, Ordering::Relaxed);
        let _ = ramp.from.set(std::time::Instant::now());
        async { "ramping" }
    };
    axum::Router::new()
        .route("/", get(serve))
        .route("/admin/ramp", get(start))
}

fn spawn_instances() -> Vec<InstanceProcess> {
    let base = BASE.as_micros().to_string();
    ["i0", "i1", "i2"]
        .iter()
        .map(|id| InstanceProcess::spawn("instance_process", id, &[(BASE_ENV, &base)]))
        .collect()
}

/// Records every state change of every instance (polled each
/// millisecond) until `stop`, at most 1,000.
async fn transitions(
    topology: Topology,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<(Duration, InstanceId, HealthState)> {
    let members = topology.snapshot();
    let mut last: Vec<_> = members.iter().map(|i| i.health().state()).collect();
    let mut seen = Vec::new();
    while !stop.load(Ordering::Relaxed) && seen.len() < 1_000 {
        for (i, member) in members.iter().enumerate() {
            let state = member.health().state();
            if state != last[i] {
                seen.push((start.elapsed(), member.id().clone(), state));
                last[i] = state;
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    seen
}

/// What one run of the scenario measured.
struct Run {
    name: &'static str,
    samples: Vec<Sample>,
    victim: InstanceId,
    /// Each session's primary and secondary.
    candidates: Vec<[InstanceId; 2]>,
    /// When the ramp was started (the request to the victim was sent).
    ramp_at: Duration,
    /// The earliest the victim's own delay can have reached the SLO.
    crossing: Duration,
    /// When the victim left Healthy, if it did.
    degraded_at: Option<Duration>,
    /// The layer's counters when the ramp started, and at the end.
    at_ramp: FailoverStats,
    stats: FailoverStats,
    /// Every state change: when, which instance, to what.
    transitions: Vec<(Duration, InstanceId, HealthState)>,
}

impl Run {
    /// The responses to requests sent once the ramp had started.
    fn episode(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(|s| s.at >= self.ramp_at)
    }

    fn over_slo(&self) -> usize {
        self.episode().filter(|s| s.latency > SLO).count()
    }

    fn over_slo_on_victim(&self) -> usize {
        self.episode()
            .filter(|s| s.latency > SLO && s.served_by.as_ref() == Some(&self.victim))
            .count()
    }

    fn errors(&self) -> usize {
        self.samples.iter().filter(|s| !s.ok).count()
    }

    /// Per session, from the ramp on: how many times its serving instance
    /// changed for good, and how many of those changes left its primary;
    /// and, over all sessions, the probe visits (one response from another
    /// instance between two from the same one: a probe is one real
    /// request).
    fn moves(&self) -> (Vec<(u32, u32)>, u64) {
        let mut served: Vec<Vec<&InstanceId>> = vec![Vec::new(); SESSIONS];
        for s in self.episode() {
            if let Some(by) = &s.served_by {
                served[s.session].push(by);
            }
        }
        let mut visits = 0;
        let moves = served
            .iter()
            .zip(&self.candidates)
            .map(|(seq, [primary, _])| {
                let (mut moves, mut away) = (0, 0);
                let mut home = seq.first().copied();
                let mut i = 1;
                while i < seq.len() {
                    if Some(seq[i]) != home {
                        if seq.get(i + 1).is_some_and(|next| Some(*next) == home) {
                            visits += 1;
                            i += 2;
                            continue;
                        }
                        moves += 1;
                        if home == Some(primary) {
                            away += 1;
                        }
                        home = Some(seq[i]);
                    }
                    i += 1;
                }
                (moves, away)
            })
            .collect();
        (moves, visits)
    }

    /// Degradation episodes of `id` from the ramp on: how many times it
    /// left Healthy.
    fn episodes(&self, id: &InstanceId) -> u32 {
        let mut healthy = true;
        let mut episodes = 0;
        for (at, instance, state) in &self.transitions {
            if instance != id {
                continue;
            }
            let now_healthy = *state == HealthState::Healthy;
            if healthy && !now_healthy && *at >= self.ramp_at {
                episodes += 1;
            }
            healthy = now_healthy;
        }
        episodes
    }

    /// When each of the victim's sessions was first served elsewhere.
    fn left_victim(&self) -> Vec<Option<Duration>> {
        (0..SESSIONS / 2)
            .map(|session| {
                self.episode()
                    .filter(|s| s.session == session)
                    .find(|s| s.served_by.as_ref().is_some_and(|i| *i != self.victim))
                    .map(|s| s.at)
            })
            .collect()
    }

    /// Writes the samples as CSV when `FORESIGHT_PREDICTIVE_CSV_DIR` is set.
    fn write_timeline(&self) {
        let Ok(dir) = std::env::var("FORESIGHT_PREDICTIVE_CSV_DIR") else {
            return;
        };
        let mut csv = String::from("at_ms,latency_ms,ok,served_by,session\n");
        for s in &self.samples {
            csv.push_str(&format!(
                "{:.3},{:.3},{},{},{}\n",
                s.at.as_secs_f64() * 1e3,
                s.latency.as_secs_f64() * 1e3,
                u8::from(s.ok),
                s.served_by.as_ref().map_or("-", |i| i.as_str()),
                s.session
            ));
        }
        csv.push_str(&format!(
            "# ramp at {:?}, SLO crossed at {:?}, victim out of Healthy at {:?}\n",
            self.ramp_at, self.crossing, self.degraded_at
        ));
        let file = self.name.replace(' ', "_");
        std::fs::write(format!("{dir}/{file}.csv"), csv).unwrap();
    }

    fn print(&self) {
        let (moves, visits) = self.moves();
        let moved = moves.iter().filter(|m| m.0 > 0).count();
        let probes = self.stats.probes - self.at_ramp.probes;
        let last_left = self.left_victim().into_iter().flatten().max();
        eprintln!(
            "{}: {} requests, {} over the {:?} SLO ({} served by the victim), {} client errors; \
             {} sessions moved, at most {} move(s) per session, {} probe visit(s) ({} probes); ramp at {:?}, SLO crossed at {:?}, \
             victim out of Healthy at {:?}, last victim session moved at {:?}; {:?}",
            self.name,
            self.samples.len(),
            self.over_slo(),
            SLO,
            self.over_slo_on_victim(),
            self.errors(),
            moved,
            moves.iter().map(|m| m.0).max().unwrap_or(0),
            visits,
            probes,
            self.ramp_at,
            self.crossing,
            self.degraded_at,
            last_left,
            self.stats,
        );
        let changes: Vec<_> = self
            .transitions
            .iter()
            .map(|(at, id, state)| format!("{:.2}s {id} {state:?}", at.as_secs_f64()))
            .collect();
        eprintln!("{}: state changes: {}", self.name, changes.join(", "));
    }
}

/// Three instances, 100 sessions half on the victim, a 10 s warm-up, then
/// the victim's latency climbs for 9.5 s. With `forecast`, the layer feeds
/// and reads a background-trained [`Forecaster`]; without, it is the
/// reactive layer alone.
async fn scenario(name: &'static str, forecast: bool) -> Run {
    let instances = spawn_instances();
    let topology = topology(&instances);
    let victim = InstanceId::from(instances[0].name.as_str());
    let keys = keys::half_on_victim(
        &topology,
        victim.as_str(),
        "session",
        DEFAULT_SEED,
        SESSIONS,
    );
    let candidates = keys
        .iter()
        .map(|k| {
            let ranked = topology.rank(&ClientKey::from(k.as_str()), DEFAULT_SEED, 2);
            [ranked[0].clone(), ranked[1].clone()]
        })
        .collect();
    let mut failover = HealthFailoverLayer::new(topology.clone());
    let forecaster = forecast.then(|| {
        forecaster_builder()
            .with_retrain_every(Duration::from_millis(300))
            .spawn()
            .unwrap()
    });
    if let Some(forecaster) = &forecaster {
        failover = failover
            .with_forecast(forecaster.clone(), LEAD)
            .with_signal_hold(HOLD);
    }
    let service = ServiceBuilder::new()
        .layer(ShardLayer::new(
            topology.clone(),
            HeaderKey::new("x-session"),
        ))
        .layer(failover.clone())
        .service(pool(&topology));

    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(drive(
        service,
        keys,
        start,
        Load {
            think: THINK,
            run: WARMUP + RAMP_RUN + Duration::from_secs(30),
            stop: Some(stop.clone()),
            max_per_session: MAX_PER_SESSION,
        },
    ));
    let changes = tokio::spawn(transitions(topology.clone(), start, stop.clone()));
    tokio::time::sleep_until(start + WARMUP).await;
    if let Some(forecaster) = &forecaster {
        let modelled = async {
            while !forecaster
                .instance_status(&victim)
                .is_some_and(|s| s.modelled)
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let status = tokio::time::timeout(Duration::from_secs(10), modelled).await;
        assert!(
            status.is_ok(),
            "{name}: no model of the victim's latency after the warm-up: {:?}",
            forecaster.instance_status(&victim)
        );
    }
    // The start (100 sessions connecting at once to three new processes)
    // may have degraded an instance; probes readmit it. The ramp starts on
    // a fleet that is all Healthy, so that what follows measures the ramp.
    let all_healthy = async {
        while !topology
            .snapshot()
            .iter()
            .all(|i| i.health().state() == HealthState::Healthy)
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let healthy = tokio::time::timeout(Duration::from_secs(10), all_healthy).await;
    assert!(
        healthy.is_ok(),
        "{name}: the fleet is not Healthy before the ramp"
    );
    let at_ramp = failover.stats();

    let admin: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let uri = format!(
        "http://{}/admin/ramp?us_per_s={RAMP_US_PER_SEC}",
        instances[0].addr
    );
    let ramp_at = start.elapsed();
    let answer = admin.get(uri.parse().unwrap()).await.unwrap();
    assert!(answer.status().is_success());
    let to_slo = (SLO - BASE).as_micros() as u64 * 1_000_000 / RAMP_US_PER_SEC;
    let crossing = ramp_at + Duration::from_micros(to_slo);
    let degraded_at = watch(&topology, victim.as_str(), start, RAMP_RUN, |s| {
        s != HealthState::Healthy
    })
    .await;
    tokio::time::sleep_until(start + ramp_at + RAMP_RUN).await;
    stop.store(true, Ordering::Relaxed);
    let samples = load.await.unwrap();
    let transitions = changes.await.unwrap();
    drop(instances);
    Run {
        name,
        samples,
        victim,
        candidates,
        ramp_at,
        crossing,
        degraded_at,
        at_ramp,
        stats: failover.stats(),
        transitions,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_predicted_slowdown_moves_sessions_before_the_slo_is_crossed() {
    let with = scenario("forecast on", true).await;
    with.print();
    let without = scenario("reactive only", false).await;
    without.print();
    // What the prediction is for: responses the degrading instance served
    // over the SLO. All responses over it are printed too; on a shared
    // machine a stall of the host slows every instance alike, in both runs.
    let (over_with, over_without) = (with.over_slo_on_victim(), without.over_slo_on_victim());
    let fewer = |with: usize, without: usize| 100.0 * (1.0 - with as f64 / without.max(1) as f64);
    eprintln!(
        "responses over the SLO from the victim: {over_with} with the forecast, {over_without} \
         without ({:.1}% fewer); from any instance: {} with, {} without ({:.1}% fewer)",
        fewer(over_with, over_without),
        with.over_slo(),
        without.over_slo(),
        fewer(with.over_slo(), without.over_slo()),
    );

    for run in [&with, &without] {
        run.write_timeline();
        assert_eq!(run.errors(), 0, "{}: client-visible errors", run.name);
    }
    // With the forecast, a session leaves its primary at most once per
    // degradation episode of its candidates, and every visit back to
    // another instance was a probe. The reactive run is printed, not held to this:
    // a probe faster than twice the fleet's median baseline can readmit
    // an instance that is still climbing, and its sessions come back to it
    // once more.
    let (moves, visits) = with.moves();
    for (session, &(_, away)) in moves.iter().enumerate() {
        let [primary, secondary] = &with.candidates[session];
        // A session whose secondary degrades too may be sent back to the
        // faster of the two, and leave again: one more episode.
        let episodes = with.episodes(primary) + with.episodes(secondary);
        assert!(
            away <= episodes,
            "session {session} left its primary {primary} {away} times in {episodes} \
             episode(s) of its candidates"
        );
    }
    // Once over the SLO, the victim is never readmitted: no Healthy state
    // from the crossing on.
    let victim_states: Vec<_> = with
        .transitions
        .iter()
        .filter(|(_, id, _)| *id == with.victim)
        .collect();
    let at_crossing = victim_states
        .iter()
        .rev()
        .find(|(at, _, _)| *at < with.crossing)
        .map(|(_, _, state)| *state);
    assert!(
        at_crossing.is_some_and(|s| s != HealthState::Healthy)
            && victim_states
                .iter()
                .filter(|(at, _, _)| *at >= with.crossing)
                .all(|(_, _, s)| *s != HealthState::Healthy),
        "the victim was in rotation over the SLO: {:?}",
        with.transitions
    );
    assert!(
        visits <= with.stats.probes - with.at_ramp.probes,
        "{visits} visits, {} probes",
        with.stats.probes - with.at_ramp.probes
    );
    // The reactive run does see the slowdown: the comparison means something.
    assert!(
        over_without >= 20,
        "the reactive run saw only {over_without} slow responses from the victim"
    );
    // At least 80 % fewer.
    assert!(
        over_with * 5 <= over_without,
        "{over_with} responses over the SLO from the victim with the forecast, \
         {over_without} without"
    );
    // With the forecast, every session of the victim was on its secondary
    // before the victim's latency reached the SLO.
    let degraded_at = with
        .degraded_at
        .expect("the forecast run never degraded the victim");
    assert!(degraded_at < with.crossing, "degraded at {degraded_at:?}");
    assert!(
        degraded_at > with.ramp_at,
        "degraded at {degraded_at:?}, before the ramp"
    );
    for (session, left) in with.left_victim().into_iter().enumerate() {
        let left = left.unwrap_or_else(|| panic!("session {session} never left the victim"));
        assert!(
            left < with.crossing,
            "session {session} left at {left:?}, the SLO was crossed at {:?}",
            with.crossing
        );
    }
}
