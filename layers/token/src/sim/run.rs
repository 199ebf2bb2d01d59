//! One simulated replay: sessions, clients, the gateway layer and the real
//! authentication server, under one refresh policy.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use foresight_core::signal::{Forecast, LoadSignal};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use tower_layer::Layer as _;
use tower_service::Service as _;

use super::auth;
use super::forecast::{Compressed, Feeder, Oracle};
use super::replay::{Replay, SIM_T0};
use crate::clock::{ManualClock, SharedClock};
use crate::issuer::{TokenIssuer as _, TokenRequest};
use crate::layer::{NEXT_TOKEN_HEADER, TokenPrefetchLayer};
use crate::sessions::Push;

/// Who refreshes tokens, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The gateway refreshes when a request arrives within the margin of
    /// expiry; a client whose token expired refreshes itself and waits.
    Reactive,
    /// The client refreshes early, on its first request after a point drawn
    /// uniformly in the last [`jitter_share`] of its token's lifetime (as
    /// the AWS SDKs' identity caches spread refreshes), in the background;
    /// an expired token is refreshed as in `Reactive`.
    ///
    /// [`jitter_share`]: super::Scenario::jitter_share
    Jittered,
    /// `TokenPrefetchLayer`'s prefetch, driven by the forecaster trained
    /// online on the trace's past.
    Predictive,
    /// The same prefetch driven by the trace itself: an upper bound.
    Oracle,
}

impl Mode {
    /// Every mode, in table order.
    pub const ALL: [Mode; 4] = [
        Mode::Reactive,
        Mode::Jittered,
        Mode::Predictive,
        Mode::Oracle,
    ];

    /// The row's name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Reactive => "reactive",
            Mode::Jittered => "jittered early refresh",
            Mode::Predictive => "predictive (learned)",
            Mode::Oracle => "oracle (upper bound)",
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The policy.
    pub mode: Mode,
    /// Authentication server requests in each simulated second.
    pub auth_per_second: Vec<u64>,
    /// Of those, the refreshes clients made themselves because their
    /// token had expired with nothing pushed (their request waited).
    pub waited_per_second: Vec<u64>,
    /// Busiest second.
    pub peak_1s: u64,
    /// Busiest 10-second window, mean per second.
    pub peak_10s: f64,
    /// Authentication requests in the replay.
    pub auth_total: u64,
    /// Client requests sent.
    pub requests: u64,
    /// Client requests that waited for the client's own refresh.
    pub waited: u64,
    /// Of those, inside a peak.
    pub waited_in_peak: u64,
    /// Client requests refused.
    pub unauthorized: u64,
    /// Refreshes that failed.
    pub failed_refreshes: u64,
    /// Longest lifetime of a token a client received, simulated seconds.
    pub longest_lifetime: u64,
    /// Every 10 simulated seconds (offset from the replay's start, negative
    /// in the warm-up): whether the load signal predicted the threshold
    /// passed within the planning horizon.
    pub alarms: Vec<(i64, bool)>,
    /// The forecast made `lead` earlier for each offset (every 30 s), in
    /// trace units.
    pub forecasts: Vec<(u64, Forecast)>,
    /// Wall-clock time of the run.
    pub wall: Duration,
}

struct Client {
    sid: String,
    sub: String,
    active: Arc<str>,
    active_exp: u64,
    refresh_at: u64,
    next: Option<(Arc<str>, u64)>,
    subscription: crate::handle::Subscription,
}

/// `iat` and `exp` of a compact JWT (unverified: the token came from the
/// server).
fn times_of(token: &str) -> (u64, u64) {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap_or_default();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
        .unwrap_or_default();
    (
        claims["iat"].as_u64().unwrap_or(0),
        claims["exp"].as_u64().unwrap_or(0),
    )
}

/// Runs `replay` under `mode`. The request pattern depends only on `seed`,
/// so rows of one seed see the same clients.
pub async fn run(replay: Arc<Replay>, mode: Mode, seed: u64) -> Outcome {
    let started = Instant::now();
    let s = replay.scenario().clone();
    let n = s.sessions;
    let lifetime = s.lifetime;
    let warmup = s.warmup.as_secs();
    let first = SIM_T0 - warmup;
    let clock = ManualClock::new(Duration::from_secs(first - lifetime.as_secs()));
    let shared: SharedClock = Arc::new(clock.clone());
    let auth = auth::start_auth(shared.clone(), n, lifetime).await;

    let mut feeder = None;
    let probe: Option<Arc<dyn LoadSignal>> = match mode {
        Mode::Predictive => {
            let mut f = Feeder::new(&replay);
            f.advance(replay.to_trace(first as f64));
            f.learned().forecaster().retrain().await.expect("retrain");
            let signal = Compressed::new(f.learned(), clock.clone(), replay.clone());
            feeder = Some(f);
            Some(Arc::new(signal))
        }
        Mode::Oracle => Some(Arc::new(Compressed::new(
            Oracle(replay.trace().clone()),
            clock.clone(),
            replay.clone(),
        ))),
        Mode::Reactive | Mode::Jittered => None,
    };
    let horizon = s.lead + s.lead / 4;
    let mut builder =
        TokenPrefetchLayer::builder(auth.verifier.clone(), auth::refresher(&auth.base))
            .with_token_lifetime(lifetime)
            .with_refresh_margin(s.margin)
            .with_max_sessions(n * 2)
            .with_max_reactive_in_flight(1024);
    builder = match (&probe, mode) {
        (Some(signal), _) => builder
            .with_load_signal(signal.clone())
            .with_threshold(replay.threshold())
            .with_horizon(horizon)
            .with_lead(s.lead)
            .with_max_extension(s.max_extension)
            .with_spread(s.after_peak.0, s.after_peak.1)
            .with_max_issue_rate(1.5 * n as f64 / s.lead.as_secs_f64()),
        // The client refreshes: the gateway only authenticates.
        (None, Mode::Jittered) => builder
            .with_refresh_margin(Duration::ZERO)
            .with_reactive_only(true),
        (None, _) => builder.with_reactive_only(true),
    };
    let layer = builder.build();
    let handle = layer.handle().clone();
    let mut gateway = layer.layer(tower::service_fn(|_req: http::Request<()>| async {
        Ok::<_, Infallible>(http::Response::new(()))
    }));
    let client_refresher = auth::refresher(&auth.base);

    // Logins before the warm-up, token ages spread over one lifetime; each
    // session's push channel stands for its WebSocket.
    let http = auth::http();
    let mut jitter = SmallRng::seed_from_u64(seed ^ 0x5eed);
    let mut draw = |exp: u64| -> u64 {
        exp.saturating_sub(
            (lifetime.as_secs_f64() * s.jitter_share * jitter.random::<f64>()) as u64,
        )
    };
    let mut clients = Vec::with_capacity(n);
    let mut longest = 0;
    for i in 0..n {
        clock.set(Duration::from_secs(first - lifetime.as_secs()) + lifetime * i as u32 / n as u32);
        let sub = format!("user{i}");
        let token = auth::login(&http, &auth.base, &sub).await;
        let claims = auth.verifier.verify(&token.token).expect("a fresh token");
        let (subscription, _) = handle.subscribe(&claims, 4).expect("tracked");
        let (iat, exp) = times_of(&token.token);
        longest = longest.max(exp.saturating_sub(iat));
        clients.push(Client {
            sid: token.sid.clone(),
            sub,
            active: token.token.clone(),
            active_exp: token.exp,
            refresh_at: draw(token.exp),
            next: None,
            subscription,
        });
    }
    // Which sessions are active at a given load: a fixed random order.
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut order: Vec<(f64, usize)> = (0..n).map(|i| (rng.random::<f64>(), i)).collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));

    let duration = replay.sim_seconds();
    let mut out = Outcome {
        mode,
        auth_per_second: Vec::new(),
        waited_per_second: vec![0; duration as usize],
        peak_1s: 0,
        peak_10s: 0.0,
        auth_total: 0,
        requests: 0,
        waited: 0,
        waited_in_peak: 0,
        unauthorized: 0,
        failed_refreshes: 0,
        longest_lifetime: 0,
        alarms: Vec::new(),
        forecasts: Vec::new(),
        wall: Duration::ZERO,
    };
    // The warm-up is played but not measured: the replay starts in a steady
    // state, not with every login token expiring in its first minute.
    for k in 0..warmup + duration {
        let now = first + k;
        let second = k as i64 - warmup as i64;
        let measured = second >= 0;
        clock.set(Duration::from_secs(now));
        let trace_now = replay.to_trace(now as f64);
        if let Some(f) = &mut feeder
            && f.advance(trace_now) > 0
        {
            f.learned().forecaster().retrain().await.expect("retrain");
        }
        let in_peak = replay.in_peak(trace_now);
        let active = order.partition_point(|(u, _)| *u < replay.activity(trace_now));
        let senders: Vec<usize> = order[..active]
            .iter()
            .filter(|_| rng.random::<f64>() < 1.0 / s.request_every)
            .map(|&(_, i)| i)
            .collect();
        // Clients take what was pushed and switch when their token is about
        // to expire; with an expired token and nothing pushed they refresh
        // themselves and the request waits (as the AWS and Google SDKs do).
        let mut waiting = Vec::new();
        let mut early = Vec::new();
        for &i in &senders {
            let c = &mut clients[i];
            while let Some(push) = c.subscription.try_recv() {
                if let Push::Token(t) = push {
                    longest = longest.max(t.exp.saturating_sub(t.nbf));
                    if t.exp > c.next.as_ref().map_or(c.active_exp, |n| n.1) {
                        c.next = Some((t.token.clone(), t.exp));
                    }
                }
            }
            if c.active_exp <= now + 5
                && let Some((token, exp)) = c.next.take()
            {
                let (iat, _) = times_of(&token);
                longest = longest.max(exp.saturating_sub(iat));
                c.active = token;
                c.active_exp = exp;
                c.refresh_at = draw(exp);
            }
            if c.active_exp <= now {
                waiting.push(i);
            } else if mode == Mode::Jittered && now >= c.refresh_at {
                early.push(i);
            }
        }
        let refreshes = futures_util::future::join_all(waiting.iter().chain(&early).map(|&i| {
            let request =
                TokenRequest::new(clients[i].sub.clone(), clients[i].sid.clone(), lifetime);
            let refresher = &client_refresher;
            async move { (i, refresher.issue(request).await) }
        }))
        .await;
        for (k, (i, result)) in refreshes.into_iter().enumerate() {
            if k < waiting.len() && measured {
                out.waited += 1;
                out.waited_in_peak += u64::from(in_peak);
                out.waited_per_second[second as usize] += 1;
            }
            match result {
                Ok(token) => {
                    let c = &mut clients[i];
                    let (iat, exp) = times_of(&token.token);
                    longest = longest.max(exp.saturating_sub(iat));
                    c.active = token.token.clone();
                    c.active_exp = token.exp;
                    c.refresh_at = draw(token.exp);
                }
                Err(_) => out.failed_refreshes += 1,
            }
        }
        for &i in &senders {
            let c = &mut clients[i];
            let request = http::Request::builder()
                .header("authorization", format!("Bearer {}", c.active))
                .header("x-foresight-session", c.sid.as_str())
                .body(())
                .expect("request");
            out.requests += u64::from(measured);
            std::future::poll_fn(|cx| gateway.poll_ready(cx))
                .await
                .expect("ready");
            match gateway.call(request).await {
                Ok(response) => {
                    if let Some(next) = response
                        .headers()
                        .get(NEXT_TOKEN_HEADER)
                        .and_then(|v| v.to_str().ok())
                    {
                        let (_, exp) = times_of(next);
                        if exp > c.next.as_ref().map_or(c.active_exp, |n| n.1) {
                            c.next = Some((next.into(), exp));
                        }
                    }
                }
                Err(_) => out.unauthorized += 1,
            }
        }
        // Background refreshes finish within the simulated second.
        handle.wait_idle(Duration::from_secs(30)).await;
        handle.tick().await;
        if let Some(signal) = &probe {
            if second % 10 == 0 {
                let alarm = signal.will_exceed(replay.threshold(), horizon).is_some();
                out.alarms.push((second, alarm));
            }
            if measured
                && second % 30 == 0
                && let Some(f) = signal.forecast(s.lead)
            {
                out.forecasts.push((second as u64 + s.lead.as_secs(), f));
            }
        }
    }
    // Tokens pushed to sessions that stayed idle count too.
    for c in &mut clients {
        while let Some(push) = c.subscription.try_recv() {
            if let Push::Token(t) = push {
                longest = longest.max(t.exp.saturating_sub(t.nbf));
            }
        }
    }
    let mut per_second = vec![0; duration as usize];
    for (t, count) in auth.rates.series() {
        if (SIM_T0..SIM_T0 + duration).contains(&t) {
            per_second[(t - SIM_T0) as usize] = count;
        }
    }
    out.auth_total = per_second.iter().sum();
    out.peak_1s = per_second.iter().copied().max().unwrap_or(0);
    out.peak_10s = per_second
        .windows(10)
        .map(|w| w.iter().sum::<u64>() as f64 / 10.0)
        .fold(0.0, f64::max);
    out.auth_per_second = per_second;
    out.longest_lifetime = longest;
    out.wall = started.elapsed();
    out
}
