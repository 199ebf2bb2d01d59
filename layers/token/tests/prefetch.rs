//! Prefetch scheduling with paused time: a peak predicted at T gives
//! refreshes spread over [T − lead, T), none during the peak, and every
//! client holds a valid token throughout, even with the issuer down during
//! the peak.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use foresight_core::signal::{Forecast, LoadSignal};
use foresight_token::error::IssueError;
use foresight_token::issuer::IssueFuture;
use foresight_token::{
    LocalIssuer, NEXT_TOKEN_HEADER, TokenIssuer, TokenPrefetchLayer, TokenRequest,
};
use tokio::time::Instant;

const MIN: Duration = Duration::from_secs(60);

/// A peak of load 1.0 in `[peak, peak + len)`, 0.1 elsewhere.
#[derive(Debug)]
struct ScriptedPeak {
    peak: Instant,
    len: Duration,
}

impl ScriptedPeak {
    fn at(&self, t: Instant) -> f64 {
        if t >= self.peak && t < self.peak + self.len {
            1.0
        } else {
            0.1
        }
    }
}

impl LoadSignal for ScriptedPeak {
    fn forecast(&self, horizon: Duration) -> Option<Forecast> {
        Some(support::exact(self.at(Instant::now() + horizon)))
    }

    fn will_exceed(&self, threshold: f64, within: Duration) -> Option<Duration> {
        let now = Instant::now();
        if threshold > 1.0 {
            return None;
        }
        if now >= self.peak && now < self.peak + self.len {
            return Some(Duration::ZERO);
        }
        (self.peak > now && self.peak - now <= within).then(|| self.peak - now)
    }
}

/// Records every issue (time and lifetime) and fails while `down`.
#[derive(Debug)]
struct Recording {
    inner: LocalIssuer,
    down: AtomicBool,
    log: Mutex<Vec<(Instant, Duration, bool)>>,
}

impl TokenIssuer for Recording {
    fn issue(&self, request: TokenRequest) -> IssueFuture<'_> {
        let down = self.down.load(Ordering::SeqCst);
        self.log
            .lock()
            .unwrap()
            .push((Instant::now(), request.lifetime, down));
        if down {
            return Box::pin(async {
                Err(IssueError::Unavailable {
                    source: "auth server down".into(),
                })
            });
        }
        self.inner.issue(request)
    }
}

struct Client {
    sid: String,
    active: String,
    active_exp: u64,
    next: Option<(String, u64)>,
}

fn exp_of(token: &str) -> u64 {
    let payload = token.split('.').nth(1).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    json["exp"].as_u64().unwrap()
}

struct Outcome {
    log: Vec<(Instant, Duration, bool)>,
    start: Instant,
    peak: Instant,
    failures: usize,
    requests: usize,
}

async fn run(predictive: bool, down_during_peak: bool, merge: bool) -> Outcome {
    let start = Instant::now();
    let peak = start + 20 * MIN;
    let peak_len = 10 * MIN;
    let support::PausedFixture {
        clock,
        issuer: local,
        verifier,
        ..
    } = support::paused_fixture();
    let issuer = Arc::new(Recording {
        inner: local.clone(),
        down: AtomicBool::new(false),
        log: Mutex::default(),
    });
    let mut builder = TokenPrefetchLayer::builder(verifier, issuer.clone())
        .with_load_signal(ScriptedPeak {
            peak,
            len: peak_len,
        })
        .with_threshold(0.8)
        .with_horizon(30 * MIN)
        .with_lead(10 * MIN)
        .with_max_extension(60 * MIN)
        .with_spread(2 * MIN, 4 * MIN)
        .with_refresh_margin(MIN)
        .with_token_lifetime(5 * MIN)
        .with_merge_due_refreshes(merge);
    if !predictive {
        builder = builder.with_reactive_only(true);
    }
    let layer = builder.build();
    let driver = layer.handle().spawn_driver(Duration::from_secs(1));
    let app = support::app(&layer);

    // 40 clients, starting 6 s apart, each sending a request every 20 s.
    let mut clients = Vec::new();
    let mut failures = 0;
    let mut requests = 0;
    let end = peak + peak_len + 5 * MIN;
    let mut step = 0u64;
    while Instant::now() < end {
        let now = Instant::now();
        if down_during_peak {
            issuer
                .down
                .store(now >= peak && now < peak + peak_len, Ordering::SeqCst);
        }
        if clients.len() < 40 && step.is_multiple_of(6) {
            let sid = format!("s{}", clients.len());
            let token = local
                .issue(TokenRequest::new("user", &sid, 5 * MIN))
                .await
                .unwrap();
            clients.push(Client {
                sid,
                active: token.token.to_string(),
                active_exp: token.exp,
                next: None,
            });
        }
        let unix = foresight_token::Clock::unix_secs(&*clock);
        for (i, client) in clients.iter_mut().enumerate() {
            if !(step + i as u64).is_multiple_of(20) {
                continue;
            }
            if client.active_exp <= unix + 5
                && let Some((next, exp)) = client.next.take()
            {
                client.active = next;
                client.active_exp = exp;
            }
            // Every active client holds a valid token.
            assert!(
                client.active_exp > unix,
                "client {} holds an expired token",
                client.sid
            );
            let response = support::send(&app, Some(&client.active), Some(&client.sid)).await;
            requests += 1;
            if response.status() != 200 {
                failures += 1;
                continue;
            }
            if let Some(next) = response.headers().get(NEXT_TOKEN_HEADER) {
                let next = next.to_str().unwrap().to_owned();
                let exp = exp_of(&next);
                if exp > client.active_exp {
                    client.next = Some((next, exp));
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        step += 1;
    }
    driver.abort();
    let log = issuer.log.lock().unwrap().clone();
    Outcome {
        log,
        start,
        peak,
        failures,
        requests,
    }
}

#[tokio::test(start_paused = true)]
async fn refreshes_are_spread_before_the_peak_and_none_fall_inside() {
    let o = run(true, false, false).await;
    let lead_start = o.peak - 10 * MIN;
    let peak_end = o.peak + 10 * MIN;
    let prefetched: Vec<_> = o.log.iter().filter(|(_, l, _)| *l > 5 * MIN).collect();
    assert_eq!(prefetched.len(), 40, "one prefetch per session");
    for (at, lifetime, _) in &prefetched {
        assert!(
            *at >= lead_start && *at < o.peak,
            "prefetch at {:?}",
            *at - o.start
        );
        // It outlasts the peak, within the bound.
        let expires = *at + *lifetime;
        assert!(
            expires >= peak_end,
            "expires {:?} before the peak ends",
            expires - o.start
        );
        assert!(*lifetime <= 65 * MIN);
    }
    // Spread: every 2-minute window of the lead holds some of them.
    for k in 0..5 {
        let from = lead_start + 2 * MIN * k;
        let n = prefetched
            .iter()
            .filter(|(at, _, _)| *at >= from && *at < from + 2 * MIN)
            .count();
        assert!((2..=20).contains(&n), "{n} prefetches in window {k}");
    }
    let in_peak = o
        .log
        .iter()
        .filter(|(at, _, _)| *at >= o.peak && *at < peak_end)
        .count();
    assert_eq!(in_peak, 0, "no refresh during the peak");
    assert_eq!(o.failures, 0, "no request failed out of {}", o.requests);
}

#[tokio::test(start_paused = true)]
async fn merged_refreshes_issue_fewer_tokens_and_still_none_in_the_peak() {
    let spread = run(true, false, false).await;
    let merged = run(true, false, true).await;
    let lead_start = merged.peak - 10 * MIN;
    let peak_end = merged.peak + 10 * MIN;
    let long: Vec<_> = merged.log.iter().filter(|(_, l, _)| *l > 5 * MIN).collect();
    assert_eq!(long.len(), 40, "one long-lived token per session");
    assert!(
        long.iter()
            .all(|(at, _, _)| *at >= lead_start && *at < merged.peak)
    );
    assert!(long.iter().all(|(at, l, _)| *at + *l >= peak_end));
    assert!(
        !merged
            .log
            .iter()
            .any(|(at, _, _)| *at >= merged.peak && *at < peak_end)
    );
    assert!(
        merged.log.len() < spread.log.len(),
        "{} issues merged, {} spread",
        merged.log.len(),
        spread.log.len()
    );
    assert_eq!(merged.failures, 0);
}

#[tokio::test(start_paused = true)]
async fn clients_carry_on_with_prefetched_tokens_while_the_issuer_is_down() {
    let o = run(true, true, true).await;
    let peak_end = o.peak + 10 * MIN;
    let attempts_in_peak = o
        .log
        .iter()
        .filter(|(at, _, _)| *at >= o.peak && *at < peak_end)
        .count();
    assert_eq!(attempts_in_peak, 0);
    assert_eq!(o.failures, 0, "no request failed out of {}", o.requests);
}

#[tokio::test(start_paused = true)]
async fn the_reactive_baseline_refreshes_during_the_peak() {
    let o = run(false, false, true).await;
    let peak_end = o.peak + 10 * MIN;
    let in_peak = o
        .log
        .iter()
        .filter(|(at, _, _)| *at >= o.peak && *at < peak_end)
        .count();
    assert!(
        in_peak >= 40,
        "{in_peak} reactive refreshes during the peak"
    );
    assert_eq!(o.failures, 0);
}
