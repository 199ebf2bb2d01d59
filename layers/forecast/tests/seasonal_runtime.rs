//! The forecaster with its seasonal history: a trace replayed through
//! `push_at`, at a coarse step (one sample per bucket) and a fine one.

use std::time::Duration;

use foresight_forecast::{FallbackReason, Forecaster, Signal};

/// 2015-01-01 00:00:00 UTC.
const START: f64 = 1_420_070_400.0;
const HOUR: f64 = 3_600.0;

/// Demand with an evening peak: 200 at night, 1,000 at 18:00.
fn demand(t: f64, seed: u64) -> f64 {
    let hour = (t / HOUR).rem_euclid(24.0);
    let peak = (-((hour - 18.0) / 2.0).powi(2)).exp();
    let mut x = seed ^ (t as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 29;
    let noise = (x % 1000) as f64 / 1000.0 - 0.5;
    200.0 + 800.0 * peak + 20.0 * noise
}

fn replay(f: &Forecaster, step: f64, until: f64) {
    let mut t = START;
    while t <= until {
        f.push_at(Signal::RequestRate, t, demand(t, 7));
        t += step;
    }
}

/// The token-prefetch setup: a 30-minute step and the trace's own times.
#[test]
fn a_coarse_step_sees_the_evening_peak_hours_ahead() {
    let f = Forecaster::builder()
        .with_step(Duration::from_secs(1_800))
        .with_system_sampler(false)
        .build()
        .expect("valid configuration");
    assert_eq!(f.max_horizon(), Duration::from_secs(8 * 3_600));
    // Fifteen days, up to noon.
    let now = START + 14.0 * 24.0 * HOUR + 12.0 * HOUR;
    replay(&f, 1_800.0, now);
    f.retrain_blocking();
    let status = f.status(Signal::RequestRate);
    assert!(status.seasonal, "{:?}", status.seasonal_fallback);
    // At noon the rate is low; six hours later it peaks.
    let at_six = f
        .forecast(Signal::RequestRate, Duration::from_secs(6 * 3_600))
        .expect("answered to 8 h");
    assert!((at_six.mean - 1_000.0).abs() < 60.0, "{at_six:?}");
    assert!(at_six.lower <= at_six.mean && at_six.mean <= at_six.upper);
    // The rate passes 600 at about 16:00 (4 h ahead), not before 15:00.
    let ahead = f
        .will_exceed(Signal::RequestRate, 600.0, Duration::from_secs(8 * 3_600))
        .expect("the peak is seen coming");
    assert!(
        (3.0 * HOUR..=5.0 * HOUR).contains(&ahead.as_secs_f64()),
        "{ahead:?}"
    );
    let load = f.signal(Signal::RequestRate);
    use foresight_forecast::LoadSignal;
    assert_eq!(
        load.will_exceed(600.0, Duration::from_secs(8 * 3_600)),
        Some(ahead)
    );
}

/// Before the seasonal model has enough history, the short-term model
/// answers and the reason is visible.
#[test]
fn too_little_history_keeps_the_short_term_model() {
    let f = Forecaster::builder()
        .with_step(Duration::from_secs(1_800))
        .with_system_sampler(false)
        .build()
        .expect("valid configuration");
    replay(&f, 1_800.0, START + 3.0 * 24.0 * HOUR);
    f.retrain_blocking();
    let status = f.status(Signal::RequestRate);
    assert!(status.modelled);
    assert!(!status.seasonal);
    assert!(matches!(
        status.seasonal_fallback.as_deref(),
        Some(FallbackReason::TooShort { need: 216, .. })
    ));
    assert!(
        f.forecast(Signal::RequestRate, Duration::from_secs(8 * 3_600))
            .is_some()
    );
}

/// A one-minute step: the short-term model answers its 12 minutes, and
/// the 5-minute buckets the seasonal model beyond; both histories stay
/// within their capacity.
#[test]
fn a_fine_step_keeps_coarse_buckets_for_the_cycle() {
    let f = Forecaster::builder()
        .with_step(Duration::from_secs(60))
        .with_capacity(1_000)
        .with_system_sampler(false)
        .build()
        .expect("valid configuration");
    // Five days up to noon.
    let now = START + 4.0 * 24.0 * HOUR + 12.0 * HOUR;
    replay(&f, 60.0, now);
    f.retrain_blocking();
    let status = f.status(Signal::RequestRate);
    assert_eq!(status.samples, 1_000);
    assert!(status.modelled);
    assert!(status.seasonal, "{:?}", status.seasonal_fallback);
    let near = f
        .forecast(Signal::RequestRate, Duration::from_secs(600))
        .expect("short-term");
    assert!(
        (near.mean - demand(now + 600.0, 0)).abs() < 60.0,
        "{near:?}"
    );
    let far = f
        .forecast(Signal::RequestRate, Duration::from_secs(6 * 3_600))
        .expect("seasonal");
    assert!((far.mean - 1_000.0).abs() < 80.0, "{far:?}");
}
