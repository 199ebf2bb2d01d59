//! A peak already under way is not planned again: the planner prefetches
//! for the next onset, spread over its own window, and never in a burst
//! inside the current peak (paused time).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use foresight_core::signal::{Forecast, LoadSignal};
use foresight_token::issuer::IssueFuture;
use foresight_token::{LocalIssuer, TokenIssuer, TokenPrefetchLayer, TokenRequest};
use tokio::time::Instant;

const MIN: Duration = Duration::from_secs(60);

/// Load 1.0 in `[start, start + 30 min)` (the peak under way) and in
/// `[start + 90 min, start + 150 min)`; 0.1 elsewhere.
#[derive(Debug)]
struct TwoPeaks {
    start: Instant,
}

impl TwoPeaks {
    fn at(&self, t: Instant) -> f64 {
        let m = t.saturating_duration_since(self.start).as_secs() / 60;
        if m < 30 || (90..150).contains(&m) {
            1.0
        } else {
            0.1
        }
    }
}

impl LoadSignal for TwoPeaks {
    fn forecast(&self, horizon: Duration) -> Option<Forecast> {
        Some(support::exact(self.at(Instant::now() + horizon)))
    }

    fn will_exceed(&self, threshold: f64, within: Duration) -> Option<Duration> {
        (0..=within.as_secs() / 60)
            .map(|m| Duration::from_secs(m * 60))
            .find(|h| self.at(Instant::now() + *h) >= threshold)
    }
}

/// Counts the tokens issued.
#[derive(Debug)]
struct Counting {
    inner: LocalIssuer,
    issued: AtomicUsize,
}

impl TokenIssuer for Counting {
    fn issue(&self, request: TokenRequest) -> IssueFuture<'_> {
        self.issued.fetch_add(1, Ordering::SeqCst);
        self.inner.issue(request)
    }
}

#[tokio::test(start_paused = true)]
async fn no_burst_inside_a_peak_under_way_and_the_next_one_is_prefetched_in_its_window() {
    let start = Instant::now();
    let support::PausedFixture {
        issuer: local,
        verifier,
        ..
    } = support::paused_fixture();
    let issuer = Arc::new(Counting {
        inner: local.clone(),
        issued: AtomicUsize::new(0),
    });
    let layer = TokenPrefetchLayer::builder(verifier.clone(), issuer.clone())
        .with_load_signal(TwoPeaks { start })
        .with_threshold(0.8)
        .with_horizon(120 * MIN)
        .with_lead(20 * MIN)
        .with_max_extension(120 * MIN)
        .with_token_lifetime(5 * MIN)
        .build();
    let handle = layer.handle().clone();
    // 30 sessions whose tokens all end inside the current peak.
    let mut subscriptions = Vec::new();
    for i in 0..30 {
        let token = local
            .issue(TokenRequest::new(format!("u{i}"), format!("s{i}"), 5 * MIN))
            .await
            .unwrap();
        let claims = verifier.verify(&token.token).unwrap();
        subscriptions.push(handle.subscribe(&claims, 4).unwrap().0);
    }

    // Inside the peak, the planner looks past it to the onset at +90 min.
    assert_eq!(handle.plan(), 30);
    let mut ran = 0;
    while Instant::now() < start + 70 * MIN {
        ran += handle.run_due().await;
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert_eq!(ran, 0, "nothing runs before the window [+70 min, +90 min)");
    assert_eq!(issuer.issued.load(Ordering::SeqCst), 0);
    while Instant::now() < start + 90 * MIN {
        ran += handle.run_due().await;
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert_eq!(ran, 30, "every session prefetched before the onset");
    assert_eq!(issuer.issued.load(Ordering::SeqCst), 30);
}

#[tokio::test(start_paused = true)]
async fn a_peak_under_way_with_no_onset_in_reach_plans_nothing() {
    let start = Instant::now();
    let support::PausedFixture {
        issuer: local,
        verifier,
        ..
    } = support::paused_fixture();
    let layer = TokenPrefetchLayer::builder(verifier.clone(), local.clone())
        .with_load_signal(TwoPeaks { start })
        .with_threshold(0.8)
        // The current peak is in reach, the next onset is not.
        .with_horizon(60 * MIN)
        .with_lead(20 * MIN)
        .with_token_lifetime(5 * MIN)
        .build();
    let handle = layer.handle().clone();
    let token = local
        .issue(TokenRequest::new("u", "s", 5 * MIN))
        .await
        .unwrap();
    let claims = verifier.verify(&token.token).unwrap();
    let _subscription = handle.subscribe(&claims, 4).unwrap();
    assert_eq!(handle.plan(), 0);
    assert_eq!(handle.scheduled(), 0);
}
