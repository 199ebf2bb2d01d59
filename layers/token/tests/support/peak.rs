//! A scripted load peak and a run of 40 clients through it, with paused
//! time: the shared scenario of the prefetch tests and of the fault
//! matrix's "auth server down through a predicted peak" row.

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

pub const MIN: Duration = Duration::from_secs(60);

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
        Some(super::exact(self.at(Instant::now() + horizon)))
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

pub struct Outcome {
    pub log: Vec<(Instant, Duration, bool)>,
    pub start: Instant,
    pub peak: Instant,
    pub failures: usize,
    pub requests: usize,
    /// Requests sent with an expired token: the client had no valid one.
    pub expired: usize,
}

/// 40 clients through a 10-minute peak predicted 20 minutes ahead: with
/// predictive prefetch or reactive refreshes only, the issuer down during
/// the peak or not, due refreshes merged into prefetches or not.
pub async fn run(predictive: bool, down_during_peak: bool, merge: bool) -> Outcome {
    let start = Instant::now();
    let peak = start + 20 * MIN;
    let peak_len = 10 * MIN;
    let super::PausedFixture {
        clock,
        issuer: local,
        verifier,
        ..
    } = super::paused_fixture();
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
    let app = super::app(&layer);

    // 40 clients, starting 6 s apart, each sending a request every 20 s.
    let mut clients = Vec::new();
    let mut failures = 0;
    let mut requests = 0;
    let mut expired = 0;
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
            // Counted, and sent anyway: the client sees what it costs.
            if client.active_exp <= unix {
                expired += 1;
            }
            let response = super::send(&app, Some(&client.active), Some(&client.sid)).await;
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
        expired,
    }
}
