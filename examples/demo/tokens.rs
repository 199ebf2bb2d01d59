//! Stage 3: tokens refreshed ahead of the load peak, not at its worst moment.
//!
//! A few thousand sessions with one-minute tokens live through a real load
//! shape (NAB `ec2_cpu_utilization_77c1ca`, the window the token crate's
//! simulation ships in `layers/token/benches/data/`: a quiet hour, a rise
//! to 97 % within minutes, an hour at the top), five times faster than the
//! trace, on simulated time (one `ManualClock` for the authentication
//! server, the gateway layer and the clients). It runs twice, each time
//! against its own instance of the real authentication server on a
//! loopback port: once with reactive refreshes (what token libraries do),
//! once with `TokenPrefetchLayer`'s predictive prefetch. Every client
//! request goes through the layer (Ed25519 verification, session tracking,
//! header delivery); every refresh is an HTTP request to the server, which
//! counts them per simulated second. The stage prints the server's peak
//! and the requests that had to wait, and checks that prefetching lowers
//! the peak with no client-visible 401 in either run.
//!
//! The shared `Forecaster` records the request rate during the reactive
//! run; the stage prints how far ahead it saw the peak coming. A model of
//! recent changes cannot see a burst before it starts, and the prefetch
//! window needs minutes, so the predictive run reads its forecast from the
//! trace itself (an oracle), and says so.
//!
//! Last, one client behind `DualTokenLayer` holds its active and its
//! pre-fetched token and switches over at expiry with no 401.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use foresight::core::signal::{Forecast, LoadSignal};
use foresight::forecast::{Forecaster, Signal};
use foresight::forward::http_client;
use foresight::token::client::{DualTokenLayer, TokenSlots};
use foresight::token::jwks::fetch_jwks;
use foresight::token::server::AuthServer;
use foresight::token::{
    Clock, IssuedToken, KeyRing, LocalIssuer, ManualClock, NEXT_TOKEN_HEADER, Push, RemoteIssuer,
    SharedClock, SigningKey, StaticKeys, Subscription, TokenIssuer, TokenPrefetchLayer,
    TokenRequest, Verifier,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

use foresight_testkit::http::serve_gateway;

/// The load shape, reused from the token crate's simulation.
const TRACE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/layers/token/benches/data/ec2_cpu_utilization_77c1ca_window.csv"
));
/// Rows of the trace played: 19:05 to 21:50, the quiet time before the
/// rise (the prefetch window needs it), the peak and the drop after it.
const ROWS: std::ops::Range<usize> = 0..34;
const SESSIONS: usize = 2_000;
/// Simulated seconds per 5-minute sample of the trace (five times faster).
const SAMPLE: u64 = 60;
const LIFETIME: Duration = Duration::from_secs(60);
const MARGIN: Duration = Duration::from_secs(12);
/// Mean seconds between two requests of an active session.
const REQUEST_EVERY: f64 = 60.0;
/// Share of active sessions that counts as the peak.
const THRESHOLD: f64 = 0.5;
/// How long before a predicted peak the prefetches are spread.
const LEAD: Duration = Duration::from_secs(900);
const FORECAST_STEP: Duration = Duration::from_secs(10);
const T0: u64 = 1_767_225_600;
const ISS: &str = "https://auth.demo";
const AUD: &str = "demo";
const SECRET: &str = "gateway-secret";

/// At CPU `c`, a share `0.05 + 0.95 c / 100` of the sessions is active.
fn load_shape() -> Vec<f64> {
    let samples: Vec<f64> = TRACE
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1)?.parse::<f64>().ok())
        .map(|cpu| 0.05 + 0.95 * cpu / 100.0)
        .collect();
    samples[ROWS].to_vec()
}

fn activity(samples: &[f64], unix: f64) -> f64 {
    let t = ((unix - T0 as f64) / SAMPLE as f64).max(0.0);
    let i = t.floor() as usize;
    if i + 1 >= samples.len() {
        return samples[samples.len() - 1];
    }
    let f = t - i as f64;
    samples[i] * (1.0 - f) + samples[i + 1] * f
}

/// The trace read ahead of time: the forecast of an oracle.
#[derive(Debug)]
struct TraceOracle {
    clock: ManualClock,
    samples: Arc<Vec<f64>>,
}

impl LoadSignal for TraceOracle {
    fn forecast(&self, horizon: Duration) -> Option<Forecast> {
        let mean = activity(&self.samples, (self.clock.unix() + horizon).as_secs_f64());
        Some(Forecast {
            mean,
            lower: mean,
            upper: mean,
        })
    }

    fn will_exceed(&self, threshold: f64, within: Duration) -> Option<Duration> {
        let now = self.clock.unix().as_secs_f64();
        (0..=within.as_secs() / 10)
            .map(|k| Duration::from_secs(k * 10))
            .find(|d| activity(&self.samples, now + d.as_secs_f64()) >= threshold)
    }
}

/// An authentication server on a loopback port and a gateway verifier
/// holding its published keys.
struct Auth {
    server: AuthServer,
    base: String,
    verifier: Verifier,
}

async fn start_auth(clock: SharedClock) -> Auth {
    let ring = KeyRing::new(
        SigningKey::generate_ed25519("k1").expect("key"),
        clock.clone(),
    );
    let issuer = LocalIssuer::new(ring, ISS, AUD, clock.clone());
    // Simulated users log in without passwords: every subject is accepted.
    // Their sessions may sit idle through the quiet hour.
    let accept_any = |attempt: &foresight::token::server::LoginAttempt| {
        Ok::<_, foresight::token::server::Rejection>(attempt.sub().to_owned())
    };
    let server = AuthServer::builder(issuer, clock.clone(), accept_any)
        .with_client_secret(SECRET)
        .with_login_lifetime(LIFETIME)
        .with_max_sessions(SESSIONS + 10)
        .with_session_idle_lifetime(Duration::from_secs(12 * 3600))
        .build()
        .expect("auth server settings");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = server.router();
    tokio::spawn(async move { axum::serve(listener, router).await.expect("auth server") });
    let base = format!("http://{addr}");
    let jwks = fetch_jwks(
        format!("{base}/.well-known/jwks.json")
            .parse()
            .expect("uri"),
    )
    .await
    .expect("jwks");
    // A short leeway: with one-minute tokens the default 30 s would hide
    // late refreshes.
    let verifier = Verifier::builder(StaticKeys::from_jwks(&jwks), ISS, AUD)
        .clock(clock)
        .leeway(Duration::from_secs(2))
        .build();
    Auth {
        server,
        base,
        verifier,
    }
}

fn remote_issuer(base: &str) -> RemoteIssuer {
    RemoteIssuer::builder(base)
        .client_secret(SECRET)
        .pool_max_idle(64)
        // A busy shared machine should slow the demo down, not fail a
        // refresh.
        .timeout(Duration::from_secs(5))
        .build()
        .expect("issuer")
}

async fn login(base: &str, sub: &str) -> IssuedToken {
    let request = http::Request::post(format!("{base}/token/login"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(format!(r#"{{"sub":"{sub}"}}"#))))
        .expect("request");
    let response = http_client::<Full<Bytes>>()
        .request(request)
        .await
        .expect("auth server reachable");
    assert!(
        response.status().is_success(),
        "login: {}",
        response.status()
    );
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&body).expect("token")
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

struct Client {
    sid: String,
    sub: String,
    active: Arc<str>,
    active_exp: u64,
    next: Option<(Arc<str>, u64)>,
    subscription: Subscription,
}

#[derive(Default)]
struct Outcome {
    peak_rps: u64,
    peak_rps_10s: f64,
    auth_total: u64,
    auth_in_peak: u64,
    requests: u64,
    waited: u64,
    waited_in_peak: u64,
    unauthorized: u64,
    failed_refreshes: u64,
    /// Per simulated second, whether the forecaster predicted the peak.
    alarms: Vec<bool>,
    /// Simulated seconds with at least `THRESHOLD` of the sessions active.
    peak_seconds: usize,
    wall: Duration,
}

enum Mode {
    /// Reactive refreshes; the forecaster records the request rate.
    Reactive(Forecaster),
    /// Prefetch ahead of the peak the trace shows.
    Predictive,
}

async fn simulate(mode: Mode, samples: Arc<Vec<f64>>) -> Outcome {
    let started = Instant::now();
    let clock = ManualClock::new(Duration::from_secs(T0 - 2 * SAMPLE));
    let shared: SharedClock = Arc::new(clock.clone());
    let auth = start_auth(shared.clone()).await;
    let builder = TokenPrefetchLayer::builder(auth.verifier.clone(), remote_issuer(&auth.base))
        .token_lifetime(LIFETIME)
        .refresh_margin(MARGIN)
        .max_sessions(SESSIONS * 2)
        .max_reactive_in_flight(1024)
        .load_signal(TraceOracle {
            clock: clock.clone(),
            samples: samples.clone(),
        })
        .threshold(THRESHOLD)
        .horizon(LEAD + Duration::from_secs(120))
        .lead(LEAD)
        // Prefetched tokens outlast the peak (the earliest are issued 15
        // minutes before it), their expiries spread over three minutes
        // after it so that they do not fall due together.
        .max_extension(Duration::from_secs(1_800))
        .spread(Duration::from_secs(60), Duration::from_secs(180))
        .max_issue_rate(20.0);
    let (layer, forecaster) = match mode {
        // The baseline: the same settings, the load signal ignored.
        Mode::Reactive(forecaster) => (builder.reactive().build(), Some(forecaster)),
        Mode::Predictive => (builder.build(), None),
    };
    let handle = layer.handle().clone();
    // Called in process, as the gateway's stack would: a `TokenError` here
    // is the client's 401 behind `foresight::edge()`.
    let mut gateway = layer.layer(service_fn(|_req: http::Request<()>| async {
        Ok::<_, Infallible>(http::Response::new(()))
    }));
    // The clients' own refresh path, at the same endpoint.
    let client_refresher = remote_issuer(&auth.base);

    // Logins before the measured window, token ages spread over one
    // lifetime as in a steady state; each session's push channel stands
    // for its WebSocket connection.
    let mut clients = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        clock.set(
            Duration::from_secs(T0 - LIFETIME.as_secs()) + LIFETIME * i as u32 / SESSIONS as u32,
        );
        let sub = format!("user{i}");
        let token = login(&auth.base, &sub).await;
        let claims = auth.verifier.verify(&token.token).expect("fresh token");
        let (subscription, _) = handle.subscribe(&claims, 4).expect("tracked");
        clients.push(Client {
            sid: token.sid.clone(),
            sub,
            active: token.token.clone(),
            active_exp: token.exp,
            next: None,
            subscription,
        });
    }
    // Which sessions are active at a given load: a fixed random order.
    let mut rng = SmallRng::seed_from_u64(7);
    let mut order: Vec<(f64, usize)> = (0..SESSIONS).map(|i| (rng.random::<f64>(), i)).collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));

    let duration = (samples.len() as u64 - 1) * SAMPLE;
    let rate_threshold = THRESHOLD * SESSIONS as f64 / REQUEST_EVERY;
    let mut outcome = Outcome::default();
    let mut in_peak_seconds = Vec::with_capacity(duration as usize);
    for second in 0..duration {
        let now = T0 + second;
        clock.set(Duration::from_secs(now));
        let a = activity(&samples, now as f64);
        let in_peak = a >= THRESHOLD;
        in_peak_seconds.push(in_peak);
        let active = order.partition_point(|(u, _)| *u < a);
        let senders: Vec<usize> = order[..active]
            .iter()
            .filter(|_| rng.random::<f64>() < 1.0 / REQUEST_EVERY)
            .map(|&(_, i)| i)
            .collect();
        // Clients take what was pushed, switch when their token is about to
        // expire, and refresh lazily (as the AWS and Google SDKs do): with
        // an expired token and nothing pushed, the request waits on the
        // authentication server.
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
            async move { (i, refresher.issue(request).await) }
        }))
        .await;
        for (i, result) in refreshes {
            outcome.waited += 1;
            outcome.waited_in_peak += u64::from(in_peak);
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
                .expect("request");
            outcome.requests += 1;
            if let Some(f) = &forecaster {
                f.record(Signal::RequestRate, 1.0);
            }
            match gateway.ready().await.expect("ready").call(request).await {
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
        // Background refreshes complete within the simulated second.
        handle.wait_idle(Duration::from_secs(30)).await;
        handle.tick().await;
        if let Some(f) = &forecaster {
            if (second + 1) % FORECAST_STEP.as_secs() == 0 {
                f.tick();
            }
            if (second + 1) % SAMPLE == 0 {
                f.retrain().await.expect("retrain");
            }
            let alarm = f
                .signal(Signal::RequestRate)
                .will_exceed(rate_threshold, f.max_horizon());
            outcome.alarms.push(alarm.is_some());
        }
    }
    let mut per_second = vec![0; duration as usize];
    for (s, n) in auth.server.rates().series() {
        if (T0..T0 + duration).contains(&s) {
            per_second[(s - T0) as usize] = n;
        }
    }
    for (n, in_peak) in per_second.iter().zip(&in_peak_seconds) {
        outcome.auth_total += n;
        outcome.auth_in_peak += if *in_peak { *n } else { 0 };
    }
    outcome.peak_rps = per_second.iter().copied().max().unwrap_or(0);
    // Single seconds are noisy at this scale; a 10 s mean shows the load
    // the server has to sustain.
    outcome.peak_rps_10s = per_second
        .windows(10)
        .map(|w| w.iter().sum::<u64>() as f64 / 10.0)
        .fold(0.0, f64::max);
    outcome.peak_seconds = in_peak_seconds.iter().filter(|p| **p).count();
    outcome.wall = started.elapsed();
    outcome
}

/// Seconds of warning the forecaster gave before the load passed the
/// threshold (negative: it only saw the peak once it had started).
fn forecaster_lead(alarms: &[bool], samples: &[f64]) -> Option<i64> {
    let crossing =
        (0..alarms.len()).find(|&s| activity(samples, (T0 + s as u64) as f64) >= THRESHOLD)?;
    if alarms[crossing] {
        let start = alarms[..crossing]
            .iter()
            .rposition(|a| !a)
            .map_or(0, |s| s + 1);
        Some((crossing - start) as i64)
    } else {
        let late = alarms[crossing..].iter().position(|a| *a)?;
        Some(-(late as i64))
    }
}

/// One client holding two tokens, over real sockets: the gateway refreshes
/// within the margin and delivers the next token in a response header;
/// `DualTokenLayer` keeps it and switches at expiry.
async fn switch_over() {
    let clock = ManualClock::new(Duration::from_secs(T0));
    let shared: SharedClock = Arc::new(clock.clone());
    let auth = start_auth(shared.clone()).await;
    let layer = TokenPrefetchLayer::builder(auth.verifier.clone(), remote_issuer(&auth.base))
        .token_lifetime(LIFETIME)
        .refresh_margin(MARGIN)
        .build();
    let handle = layer.handle().clone();
    let gateway = serve_gateway(
        ServiceBuilder::new()
            .layer(foresight::edge())
            .layer(layer)
            .service(service_fn(|_req: http::Request<Incoming>| async {
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
            })),
    )
    .await;
    let first = login(&auth.base, "alice").await;
    let slots = TokenSlots::new(shared);
    slots.deliver(&first.token);
    let client = DualTokenLayer::new(slots.clone()).layer(http_client::<Full<Bytes>>());
    let uri = format!("http://{gateway}/api");
    let get = async |at: u64| {
        clock.set(Duration::from_secs(at));
        let request = http::Request::get(&uri)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let status = client
            .clone()
            .oneshot(request)
            .await
            .expect("gateway reachable")
            .status();
        handle.wait_idle(Duration::from_secs(10)).await;
        status
    };
    let short = |jti: &str| jti[jti.len().saturating_sub(6)..].to_owned();
    let exp = first.exp;
    println!(
        "\none client, DualTokenLayer over hyper, {} s tokens; active token …{} expires at +{} s",
        LIFETIME.as_secs(),
        short(&first.jti),
        exp - T0
    );
    let mut statuses = vec![get(T0 + 10).await];
    statuses.push(get(exp - 10).await);
    println!(
        "  +{:>2} s  request {}; inside the {} s margin the gateway refreshes in the background",
        exp - 10 - T0,
        statuses[1].as_u16(),
        MARGIN.as_secs()
    );
    statuses.push(get(exp - 8).await);
    assert!(slots.has_next(), "the next token arrived in the header");
    println!(
        "  +{:>2} s  request {}; {NEXT_TOKEN_HEADER} delivered the next token: two held",
        exp - 8 - T0,
        statuses[2].as_u16()
    );
    statuses.push(get(exp - 3).await);
    let (jti, next_exp) = slots.active().expect("a token");
    let jti = jti.unwrap_or_default();
    assert_ne!(jti, first.jti, "switched to the pre-fetched token");
    println!(
        "  +{:>2} s  request {} sent with …{} (expires at +{} s): switched before expiry",
        exp - 3 - T0,
        statuses[3].as_u16(),
        short(&jti),
        next_exp - T0
    );
    statuses.push(get(exp + 5).await);
    let stale = http::Request::get(&uri)
        .header("authorization", format!("Bearer {}", first.token))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let old = http_client::<Full<Bytes>>()
        .request(stale)
        .await
        .expect("gateway reachable")
        .status();
    println!(
        "  +{:>2} s  request {}; the old token alone is now refused: {}",
        exp + 5 - T0,
        statuses[4].as_u16(),
        old.as_u16()
    );
    assert!(statuses.iter().all(|s| s.is_success()), "{statuses:?}");
    assert_eq!(old, http::StatusCode::UNAUTHORIZED);
}

pub async fn run() {
    println!("\n== 3. Tokens: refreshed ahead of the peak, not at its worst moment ==");
    let samples = Arc::new(load_shape());
    println!(
        "{SESSIONS} sessions, {} s tokens, {} s margin; load: NAB ec2_cpu_utilization_77c1ca \
         19:05–21:50, each 5-minute sample played in {SAMPLE} s of simulated time",
        LIFETIME.as_secs(),
        MARGIN.as_secs(),
    );
    let forecaster = Forecaster::builder()
        .with_step(FORECAST_STEP)
        .with_system_sampler(false)
        .build()
        .expect("forecaster");
    let reactive = simulate(Mode::Reactive(forecaster.clone()), samples.clone()).await;
    let predictive = simulate(Mode::Predictive, samples.clone()).await;

    println!(
        "\nthe peak: {} s of simulated time with at least {:.0} % of the sessions active",
        reactive.peak_seconds,
        THRESHOLD * 100.0
    );
    let status = forecaster.status(Signal::RequestRate);
    let lead = forecaster_lead(&reactive.alarms, &samples);
    let seen = match lead {
        Some(s) if s >= 0 => format!("{s} s before the load passed the threshold"),
        Some(s) => format!("only {} s after the load passed the threshold", -s),
        None => "not at all".to_owned(),
    };
    println!(
        "forecaster (request rate recorded in the reactive run, {} samples, {}): saw the peak \
         {seen};\nspreading the prefetches needs {} s of warning, so the predictive run reads \
         its forecast from the trace itself (an oracle)",
        status.samples,
        if status.modelled { "modelled" } else { "naive" },
        LEAD.as_secs(),
    );

    println!(
        "\n{:<11} {:-^39} {:-^29}",
        "", " auth server requests ", " client requests "
    );
    println!(
        "{:<11} {:>7} {:>11} {:>9} {:>9} {:>7} {:>14} {:>6} {:>6}",
        "run", "peak/s", "peak/s 10s", "total", "in peak", "sent", "waited (peak)", "401s", "wall"
    );
    for (name, o) in [("reactive", &reactive), ("predictive", &predictive)] {
        println!(
            "{:<11} {:>7} {:>11.1} {:>9} {:>9} {:>7} {:>14} {:>6} {:>4.1} s",
            name,
            o.peak_rps,
            o.peak_rps_10s,
            o.auth_total,
            o.auth_in_peak,
            o.requests,
            format!("{} ({})", o.waited, o.waited_in_peak),
            o.unauthorized,
            o.wall.as_secs_f64(),
        );
    }
    println!(
        "(waited: requests held until the client's own refresh returned; 401s: requests refused)"
    );
    println!(
        "peak auth requests/s: {:.1}x lower with prefetch ({} → {}; 10 s mean {:.1} → {:.1}, {:.1}x)",
        reactive.peak_rps as f64 / predictive.peak_rps.max(1) as f64,
        reactive.peak_rps,
        predictive.peak_rps,
        reactive.peak_rps_10s,
        predictive.peak_rps_10s,
        reactive.peak_rps_10s / predictive.peak_rps_10s.max(0.1),
    );

    assert_eq!(reactive.unauthorized, 0, "no client-visible 401, reactive");
    assert_eq!(
        predictive.unauthorized, 0,
        "no client-visible 401, predictive"
    );
    assert_eq!(reactive.failed_refreshes + predictive.failed_refreshes, 0);
    assert!(
        predictive.peak_rps < reactive.peak_rps,
        "prefetch lowers the peak"
    );

    switch_over().await;
}
