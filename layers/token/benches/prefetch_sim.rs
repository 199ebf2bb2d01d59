//! Reactive refresh against predictive prefetch: 10,000 sessions with
//! 5-minute tokens, a real load shape, the real authentication server on
//! loopback.
//!
//! ```text
//! cargo bench -p foresight-token --bench prefetch_sim
//! ```
//!
//! Time is simulated: a `ManualClock` shared by the authentication server,
//! the gateway layer and the clients advances one second per step, so three
//! hours of traffic run in about a minute; everything else is real: every
//! refresh is an HTTP request to the authentication server on 127.0.0.1
//! (which signs with Ed25519 and counts requests per simulated second),
//! every client request goes through `TokenPrefetchLayer` (Ed25519
//! verification, session tracking, header delivery) and every pushed token
//! through the session's `Subscription` (the WebSocket endpoint's queue).
//!
//! Load: `benches/data/ec2_cpu_utilization_77c1ca_window.csv` (NAB). At CPU
//! `c`, a fraction `0.05 + 0.95 c / 100` of the sessions is active (a fixed
//! random order decides which), and each active session sends a request
//! every 120 s on average (Bernoulli per second). Clients refresh lazily,
//! as the AWS and Google SDKs do: a client whose token has expired, with no
//! pushed token in hand, asks the authentication server itself and its
//! request waits for the answer; the gateway also refreshes a token in the
//! background when a request arrives within 60 s of its expiry. The
//! predictive run adds the prefetch policy, fed by the trace itself as the
//! forecast (an oracle: with a learned forecaster the result depends on its
//! recall).
//!
//! Outputs: a table on stdout and in `benches/prefetch_sim.md`, and the plot
//! `benches/prefetch_sim.svg`. Under `cargo test --benches` (no `--bench`
//! argument) it only says how to run it: the simulation takes minutes in a
//! debug build. `FORESIGHT_SIM_SESSIONS` overrides the number of sessions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use foresight_core::signal::{Forecast, LoadSignal};
use foresight_token::jwks::fetch_jwks;
use foresight_token::server::AuthServer;
use foresight_token::{
    Clock, IssuedToken, KeyRing, LocalIssuer, ManualClock, NEXT_TOKEN_HEADER, Push, RemoteIssuer,
    SharedClock, SigningKey, StaticKeys, Subscription, TokenIssuer, TokenPrefetchLayer,
    TokenRequest, Verifier,
};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use tower::{Layer, Service, ServiceExt, service_fn};

const T0: u64 = 1_767_225_600;
const LIFETIME: Duration = Duration::from_secs(300);
const STEP: u64 = 300;
const REQUEST_EVERY: f64 = 120.0;
const THRESHOLD: f64 = 0.5;
const ISS: &str = "https://auth.sim";
const AUD: &str = "sim";
const SECRET: &str = "gateway-secret";

fn load_trace() -> Vec<f64> {
    let text = include_str!("data/ec2_cpu_utilization_77c1ca_window.csv");
    text.lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1)?.parse::<f64>().ok())
        .map(|cpu| 0.05 + 0.95 * cpu / 100.0)
        .collect()
}

/// The trace as a forecast: an oracle that reads the future.
#[derive(Debug)]
struct TraceSignal {
    clock: ManualClock,
    samples: Arc<Vec<f64>>,
}

fn activity(samples: &[f64], unix: f64) -> f64 {
    let t = (unix - T0 as f64) / STEP as f64;
    if t <= 0.0 {
        return samples[0];
    }
    let i = t.floor() as usize;
    if i + 1 >= samples.len() {
        return *samples.last().unwrap_or(&0.0);
    }
    let f = t - i as f64;
    samples[i] * (1.0 - f) + samples[i + 1] * f
}

impl LoadSignal for TraceSignal {
    fn forecast(&self, horizon: Duration) -> Option<Forecast> {
        let at = (self.clock.unix() + horizon).as_secs_f64();
        let mean = activity(&self.samples, at);
        Some(Forecast {
            mean,
            lower: mean,
            upper: mean,
        })
    }

    fn will_exceed(&self, threshold: f64, within: Duration) -> Option<Duration> {
        let now = self.clock.unix().as_secs_f64();
        (0..=within.as_secs() / 30)
            .map(|k| Duration::from_secs(k * 30))
            .find(|d| activity(&self.samples, now + d.as_secs_f64()) >= threshold)
    }
}

struct Client {
    sid: String,
    sub: String,
    active: Arc<str>,
    active_exp: u64,
    next: Option<(Arc<str>, u64)>,
    subscription: Subscription,
}

#[derive(Default, Debug)]
struct Outcome {
    auth_series: Vec<(u64, u64)>,
    peak_rps: u64,
    peak_rps_10s: f64,
    auth_total: u64,
    requests: u64,
    waited: u64,
    waited_in_peak: u64,
    latencies: Vec<Duration>,
    unauthorized: u64,
    failed_refreshes: u64,
    wall: Duration,
}

async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn exp_of(token: &str) -> u64 {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
        .and_then(|v| v["exp"].as_u64())
        .unwrap_or(0)
}

async fn run(predictive: bool, sessions: usize, samples: Arc<Vec<f64>>, seed: u64) -> Outcome {
    let started = Instant::now();
    let clock = ManualClock::new(Duration::from_secs(T0 - 600));
    let shared: SharedClock = Arc::new(clock.clone());
    let ring = KeyRing::new(SigningKey::generate_ed25519("k1").unwrap(), shared.clone());
    let issuer = LocalIssuer::new(ring, ISS, AUD, shared.clone());
    // Simulated users log in without passwords: every subject is accepted.
    // Their sessions may sit idle through the quiet hour.
    let accept_any = |attempt: &foresight_token::server::LoginAttempt| {
        Ok::<_, foresight_token::server::Rejection>(attempt.sub().to_owned())
    };
    let auth = AuthServer::builder(issuer, shared.clone(), accept_any)
        .with_client_secret(SECRET)
        .with_max_sessions(sessions + 10)
        .with_session_idle_lifetime(Duration::from_secs(12 * 3600))
        .build()
        .unwrap();
    let auth_addr = serve(auth.router()).await;
    let base = format!("http://{auth_addr}");

    let keys = StaticKeys::from_jwks(
        &fetch_jwks(format!("{base}/.well-known/jwks.json").parse().unwrap())
            .await
            .unwrap(),
    );
    let verifier = Verifier::builder(keys, ISS, AUD)
        .clock(shared.clone())
        .build();
    let gateway_issuer = RemoteIssuer::builder(&base)
        .client_secret(SECRET)
        .pool_max_idle(64)
        .build()
        .unwrap();
    let mut builder = TokenPrefetchLayer::builder(verifier.clone(), gateway_issuer)
        .token_lifetime(LIFETIME)
        .refresh_margin(Duration::from_secs(60))
        .max_sessions(sessions * 2)
        .max_reactive_in_flight(1024)
        .load_signal(TraceSignal {
            clock: clock.clone(),
            samples: samples.clone(),
        })
        .threshold(THRESHOLD)
        .horizon(Duration::from_secs(3600))
        .lead(Duration::from_secs(50 * 60))
        .max_extension(Duration::from_secs(2 * 3600))
        .spread(Duration::from_secs(5 * 60), Duration::from_secs(15 * 60))
        .max_issue_rate(20.0);
    if !predictive {
        builder = builder.reactive();
    }
    let layer = builder.build();
    let handle = layer.handle().clone();
    let mut app = layer.layer(service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(()))
    }));
    // The clients' own refresh path (their refresh token, at the same endpoint).
    let client_refresher = RemoteIssuer::builder(&base)
        .client_secret(SECRET)
        .pool_max_idle(64)
        .build()
        .unwrap();

    // Logins before the measured window, with token ages spread over one
    // lifetime as in a steady state.
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let mut clients = Vec::with_capacity(sessions);
    for i in 0..sessions {
        clock.set(
            Duration::from_secs(T0 - 300) + Duration::from_secs(300) * i as u32 / sessions as u32,
        );
        let sub = format!("user{i}");
        let request = http::Request::post(format!("{base}/token/login"))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                serde_json::json!({ "sub": sub }).to_string(),
            )))
            .unwrap();
        let response = http.request(request).await.unwrap();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let token: IssuedToken = serde_json::from_slice(&body).unwrap();
        let claims = verifier.verify(&token.token).unwrap();
        let (subscription, _) = handle.subscribe(&claims, 4).unwrap();
        clients.push(Client {
            sid: token.sid.clone(),
            sub,
            active: token.token.clone(),
            active_exp: token.exp,
            next: None,
            subscription,
        });
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut order: Vec<(f64, usize)> = (0..sessions).map(|i| (rng.random::<f64>(), i)).collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));

    let duration = (samples.len() as u64 - 1) * STEP;
    let mut outcome = Outcome::default();
    clock.set(Duration::from_secs(T0));
    for second in 0..duration {
        let now = T0 + second;
        clock.set(Duration::from_secs(now));
        let a = activity(&samples, now as f64);
        let in_peak = a >= THRESHOLD;
        let active = order.partition_point(|(u, _)| *u < a);
        let mut senders = Vec::new();
        for &(_, i) in &order[..active] {
            if rng.random::<f64>() < 1.0 / REQUEST_EVERY {
                senders.push(i);
            }
        }
        // Clients whose token expired, with nothing pushed, refresh first
        // and their request waits: all of this second's at once.
        let mut waiting = Vec::new();
        for &i in &senders {
            let c = &mut clients[i];
            while let Some(push) = c.subscription.try_recv() {
                if let Push::Token(t) = push
                    && t.exp > c.next.as_ref().map_or(c.active_exp, |n| n.1)
                {
                    c.next = Some((t.token.clone(), t.exp));
                }
            }
            if c.active_exp <= now + 5
                && let Some((token, exp)) = c.next.take()
            {
                c.active = token;
                c.active_exp = exp;
            }
            if c.active_exp <= now {
                waiting.push(i);
            }
        }
        let refreshes = futures_util::future::join_all(waiting.iter().map(|&i| {
            let request =
                TokenRequest::new(clients[i].sub.clone(), clients[i].sid.clone(), LIFETIME);
            let refresher = &client_refresher;
            async move {
                let t = Instant::now();
                (i, refresher.issue(request).await, t.elapsed())
            }
        }))
        .await;
        for (i, result, latency) in refreshes {
            outcome.waited += 1;
            outcome.waited_in_peak += u64::from(in_peak);
            outcome.latencies.push(latency);
            match result {
                Ok(token) => {
                    clients[i].active = token.token.clone();
                    clients[i].active_exp = token.exp;
                }
                Err(_) => outcome.failed_refreshes += 1,
            }
        }
        for &i in &senders {
            let c = &mut clients[i];
            let request = http::Request::builder()
                .header("authorization", format!("Bearer {}", c.active))
                .header("x-foresight-session", c.sid.as_str())
                .body(())
                .unwrap();
            outcome.requests += 1;
            match app.ready().await.unwrap().call(request).await {
                Ok(response) => {
                    if let Some(next) = response
                        .headers()
                        .get(NEXT_TOKEN_HEADER)
                        .and_then(|v| v.to_str().ok())
                    {
                        let exp = exp_of(next);
                        if exp > c.next.as_ref().map_or(c.active_exp, |n| n.1) {
                            c.next = Some((next.into(), exp));
                        }
                    }
                }
                Err(_) => outcome.unauthorized += 1,
            }
        }
        // Background refreshes finish within the simulated second.
        handle.wait_idle(Duration::from_secs(30)).await;
        handle.tick().await;
    }
    let rates = auth.rates();
    let end = T0 + duration;
    outcome.auth_series = (T0..end).map(|s| (s - T0, 0)).collect();
    for (s, n) in rates.series() {
        if (T0..end).contains(&s) {
            outcome.auth_series[(s - T0) as usize].1 = n;
        }
    }
    outcome.auth_total = outcome.auth_series.iter().map(|(_, n)| n).sum();
    outcome.peak_rps = outcome
        .auth_series
        .iter()
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0);
    outcome.peak_rps_10s = outcome
        .auth_series
        .windows(10)
        .map(|w| w.iter().map(|(_, n)| *n as f64).sum::<f64>() / 10.0)
        .fold(0.0, f64::max);
    outcome.latencies.sort();
    outcome.wall = started.elapsed();
    outcome
}

fn percentile(sorted: &[Duration], p: f64) -> String {
    if sorted.is_empty() {
        return "–".to_owned();
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    format!("{:.2} ms", sorted[i].as_secs_f64() * 1e3)
}

fn plot(reactive: &Outcome, predictive: &Outcome, samples: &[f64], path: &std::path::Path) {
    use plotters::prelude::*;
    let smooth = |o: &Outcome| -> Vec<(f64, f64)> {
        o.auth_series
            .chunks(10)
            .map(|c| {
                (
                    c[0].0 as f64 / 60.0,
                    c.iter().map(|(_, n)| *n as f64).sum::<f64>() / c.len() as f64,
                )
            })
            .collect()
    };
    let r = smooth(reactive);
    let p = smooth(predictive);
    let max_y = r.iter().chain(&p).map(|(_, y)| *y).fold(1.0, f64::max) * 1.1;
    let minutes = reactive.auth_series.len() as f64 / 60.0;
    let root = SVGBackend::new(path, (1000, 500)).into_drawing_area();
    root.fill(&WHITE).unwrap();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Authentication server requests/s (10 s mean): reactive vs predictive, 10,000 sessions",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..minutes, 0f64..max_y)
        .unwrap();
    chart
        .configure_mesh()
        .x_desc("simulated minutes (load: NAB ec2_cpu_utilization_77c1ca, 2014-04-11 19:05–22:20)")
        .y_desc("auth requests / s")
        .draw()
        .unwrap();
    chart
        .draw_series(LineSeries::new(r, &RED))
        .unwrap()
        .label("reactive (refresh on request, 60 s margin)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .draw_series(LineSeries::new(p, &BLUE))
        .unwrap()
        .label("predictive prefetch")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    let load: Vec<(f64, f64)> = (0..samples.len())
        .map(|i| ((i as u64 * STEP) as f64 / 60.0, samples[i] * max_y))
        .collect();
    chart
        .draw_series(LineSeries::new(load, BLACK.mix(0.3)))
        .unwrap()
        .label("active sessions (share, scaled)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.3)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .unwrap();
    root.present().unwrap();
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if !full {
        println!("prefetch_sim: run it with `cargo bench -p foresight-token --bench prefetch_sim`");
        return;
    }
    let sessions = std::env::var("FORESIGHT_SIM_SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let samples = Arc::new(load_trace());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let reactive = runtime.block_on(run(false, sessions, samples.clone(), 7));
    let predictive = runtime.block_on(run(true, sessions, samples.clone(), 7));
    let row = |name: &str, o: &Outcome| {
        format!(
            "| {name} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} s |",
            o.peak_rps,
            o.peak_rps_10s,
            o.auth_total,
            o.requests,
            o.waited,
            o.waited_in_peak,
            percentile(&o.latencies, 0.5),
            percentile(&o.latencies, 0.99),
            o.unauthorized,
            o.failed_refreshes,
            o.wall.as_secs_f64(),
        )
    };
    let table = format!(
        "| mode | peak auth req/s (1 s) | peak auth req/s (10 s mean) | auth requests | client requests | waited on a refresh | waited during the peak | added latency p50 | added latency p99 | 401s | failed refreshes | wall time |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n{}\n{}\n\n\
         Peak reduction: {:.1}x (1 s buckets), {:.1}x (10 s mean).\n",
        row("reactive", &reactive),
        row("predictive", &predictive),
        reactive.peak_rps as f64 / predictive.peak_rps.max(1) as f64,
        reactive.peak_rps_10s / predictive.peak_rps_10s.max(0.1),
    );
    println!("{sessions} sessions\n\n{table}");
    for (name, o) in [("reactive", &reactive), ("predictive", &predictive)] {
        let mut busiest = o.auth_series.clone();
        busiest.sort_by_key(|(s, n)| (std::cmp::Reverse(*n), *s));
        let minutes: Vec<_> = o
            .auth_series
            .chunks(300)
            .map(|c| c.iter().map(|(_, n)| n).sum::<u64>() / 300)
            .collect();
        println!(
            "{name}: busiest seconds {:?}",
            &busiest[..5.min(busiest.len())]
        );
        println!("{name}: mean req/s per 5 min {minutes:?}");
    }
    if sessions == 10_000 {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches");
        plot(
            &reactive,
            &predictive,
            &samples,
            &dir.join("prefetch_sim.svg"),
        );
        std::fs::write(dir.join("prefetch_sim.md"), table).unwrap();
    }
}
