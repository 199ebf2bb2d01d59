//! Degenerate inputs: empty, NaN, gaps, constant, too short. Each falls back
//! to the naive forecast with a typed reason, and nothing panics.

mod support;

use std::time::Duration;

use foresight_forecast::model::{ModelConfig, Times, min_samples, train};
use foresight_forecast::{FallbackReason, Forecaster, Signal};
use support::{DAY, daily_sine};

fn manual() -> Forecaster {
    Forecaster::builder()
        .with_step(Duration::from_secs(10))
        .with_system_sampler(false)
        .build()
        .expect("valid configuration")
}

#[test]
fn reasons_are_typed() {
    let config = ModelConfig::default();
    let need = min_samples(&config);
    assert!(matches!(
        train(&[], Times::Unknown, &config),
        Err(FallbackReason::NoData)
    ));
    assert!(matches!(
        train(&[f64::NAN; 500], Times::Unknown, &config),
        Err(FallbackReason::NonFinite { samples: 500 })
    ));
    assert!(matches!(
        train(&[3.0; 500], Times::Unknown, &config),
        Err(FallbackReason::Constant)
    ));
    let short = daily_sine(need - 1, 10.0, 1.0, 0.1, 5);
    match train(&short, Times::Unknown, &config) {
        Err(FallbackReason::TooShort { have, need: n }) => {
            assert_eq!((have, n), (need - 1, need));
        }
        other => panic!("expected TooShort, got {other:?}"),
    }
    let enough = daily_sine(need, 10.0, 1.0, 0.1, 5);
    assert!(train(&enough, Times::Unknown, &config).is_ok());
}

#[test]
fn gaps_and_infinities_are_filled() {
    let mut y = daily_sine(4 * DAY, 10.0, 3.0, 0.2, 6);
    for i in (0..y.len()).step_by(7) {
        y[i] = f64::NAN;
    }
    y[100] = f64::INFINITY;
    y[0] = f64::NAN;
    let model = train(&y, Times::Unknown, &ModelConfig::default()).expect("a model");
    let preds = model
        .backtest(&y, Times::Unknown, 2 * DAY..4 * DAY)
        .expect("forecasts");
    assert!(preds.iter().all(|p| p.is_finite()));
}

#[test]
fn no_data_means_no_forecast() {
    let f = manual();
    assert_eq!(f.forecast(Signal::Latency, Duration::from_secs(10)), None);
    f.tick();
    // A latency step without requests is a gap, not a zero.
    assert_eq!(f.forecast(Signal::Latency, Duration::from_secs(10)), None);
    f.retrain_blocking();
    assert_eq!(
        f.will_exceed(Signal::Latency, 1.0, Duration::from_secs(60)),
        None
    );
    // A rate step without requests is a rate of zero.
    let rate = f
        .forecast(Signal::RequestRate, Duration::from_secs(10))
        .expect("zero rate");
    assert_eq!(rate.mean, 0.0);
}

#[test]
fn all_nan_history_gives_no_forecast() {
    let f = manual();
    for _ in 0..300 {
        f.push(Signal::Cpu, f64::NAN);
    }
    f.retrain_blocking();
    assert_eq!(f.forecast(Signal::Cpu, Duration::from_secs(30)), None);
    let status = f.status(Signal::Cpu);
    assert!(!status.modelled);
    assert!(matches!(
        status.fallback.as_deref(),
        Some(FallbackReason::NonFinite { .. })
    ));
}

#[test]
fn constant_series_is_forecast_exactly() {
    let f = manual();
    for _ in 0..1_000 {
        f.push(Signal::ActiveSessions, 42.0);
    }
    f.retrain_blocking();
    let fc = f
        .forecast(Signal::ActiveSessions, Duration::from_secs(120))
        .expect("a forecast");
    assert_eq!((fc.mean, fc.lower, fc.upper), (42.0, 42.0, 42.0));
    assert!(matches!(
        f.status(Signal::ActiveSessions).fallback.as_deref(),
        Some(FallbackReason::Constant)
    ));
}

#[test]
fn short_series_is_forecast_naively_with_an_interval() {
    let f = manual();
    for v in [1.0, 3.0, 2.0, 4.0, 3.0] {
        f.push(Signal::Memory, v);
    }
    f.retrain_blocking();
    // One step ahead: the changes seen were +2, −1, +2, −1.
    let fc = f
        .forecast(Signal::Memory, Duration::from_secs(10))
        .expect("a forecast");
    assert_eq!(fc.mean, 3.0);
    assert!(fc.lower < 3.0 && fc.upper > 3.0, "{fc:?}");
    assert!(matches!(
        f.status(Signal::Memory).fallback.as_deref(),
        Some(FallbackReason::TooShort { have: 5, .. })
    ));
}

#[test]
fn horizons_beyond_the_model_are_not_answered() {
    // The short-term model alone answers its 12 steps.
    let f = Forecaster::builder()
        .with_system_sampler(false)
        .with_seasonal(None)
        .build()
        .expect("valid configuration");
    f.push(Signal::Cpu, 10.0);
    assert_eq!(f.max_horizon(), Duration::from_secs(120));
    assert!(f.forecast(Signal::Cpu, Duration::from_secs(120)).is_some());
    assert_eq!(f.forecast(Signal::Cpu, Duration::from_secs(121)), None);
    // With the seasonal model (the default), up to its 8 hours; before it
    // is trained, the last forecast is held.
    let f = manual();
    f.push(Signal::Cpu, 10.0);
    let eight_hours = Duration::from_secs(8 * 3600);
    assert_eq!(f.max_horizon(), eight_hours);
    let held = f.forecast(Signal::Cpu, eight_hours).expect("answered");
    assert_eq!(held.mean, 10.0);
    assert_eq!(
        f.forecast(Signal::Cpu, eight_hours + Duration::from_secs(1)),
        None
    );
}

#[test]
fn invalid_configuration_is_rejected() {
    let bad = Forecaster::builder().with_step(Duration::ZERO).build();
    assert!(bad.is_err());
    let bad = Forecaster::builder()
        .with_model(ModelConfig::default().with_alpha(-1.0))
        .build();
    assert!(bad.is_err());
    let bad = Forecaster::builder().with_capacity(1).build();
    assert!(bad.is_err());
}
