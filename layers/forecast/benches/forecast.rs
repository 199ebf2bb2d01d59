//! Criterion benches of the forecaster: the request-path read, `record`,
//! closing a step, one retrain on two weeks of 5-minute samples, and one
//! seasonal fit and choice on the 22 days of 5-minute buckets a signal
//! keeps.
//!
//! `cargo bench -p foresight-forecast --bench forecast`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use foresight_forecast::model::{
    ModelConfig, SeasonalConfig, Times, choose, train, train_seasonal,
};
use foresight_forecast::{Forecaster, Signal};

/// Two weeks of 5-minute samples: a daily cycle, noise and a level shift.
fn series(n: usize) -> Vec<f64> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let t = i as f64;
            let shift = if i > n / 2 { 15.0 } else { 0.0 };
            40.0 + 10.0 * (std::f64::consts::TAU * t / 288.0).sin() + 4.0 * noise + shift
        })
        .collect()
}

fn trained() -> Forecaster {
    let f = Forecaster::builder()
        .with_step(Duration::from_secs(300))
        .with_system_sampler(false)
        .build()
        .expect("valid configuration");
    for v in series(4032) {
        f.push(Signal::RequestRate, v);
    }
    f.retrain_blocking();
    assert!(f.status(Signal::RequestRate).modelled);
    f
}

fn reads(c: &mut Criterion) {
    let f = trained();
    c.bench_function("forecast read", |b| {
        b.iter(|| {
            f.forecast(
                black_box(Signal::RequestRate),
                black_box(Duration::from_secs(1_650)),
            )
        })
    });
    c.bench_function("will_exceed read", |b| {
        b.iter(|| {
            f.will_exceed(
                black_box(Signal::RequestRate),
                black_box(1_000.0),
                black_box(Duration::from_secs(3_600)),
            )
        })
    });
    c.bench_function("record", |b| {
        b.iter(|| f.record(black_box(Signal::RequestRate), black_box(1.0)))
    });
    c.bench_function("tick (close a step, 8 series)", |b| b.iter(|| f.tick()));
}

fn retrain(c: &mut Criterion) {
    let y = series(4032);
    let config = ModelConfig::default();
    c.bench_function("retrain 4032 points", |b| {
        b.iter(|| train(black_box(&y), Times::Unknown, &config).expect("trains"))
    });
    // 22 days of 5-minute buckets: the seasonal history's capacity.
    let y = series(6336);
    let seasonal = SeasonalConfig::default();
    c.bench_function("seasonal fit 6336 buckets", |b| {
        b.iter(|| train_seasonal(black_box(&y), 300.0, &seasonal).expect("trains"))
    });
    c.bench_function("seasonal choice 6336 buckets", |b| {
        b.iter(|| {
            let choice = choose(black_box(&y), 300.0, &config, &seasonal);
            assert!(choice.seasonal.is_some());
            choice
        })
    });
}

/// A read once the seasonal model answers beyond the short-term horizons
/// (a 1-minute step, 5-minute buckets).
fn seasonal_reads(c: &mut Criterion) {
    let f = Forecaster::builder()
        .with_step(Duration::from_secs(60))
        .with_system_sampler(false)
        .build()
        .expect("valid configuration");
    let y = series(6336);
    let start = 1_420_070_400.0;
    for (i, v) in y.iter().enumerate() {
        for k in 0..5 {
            f.push_at(Signal::RequestRate, start + (i * 300 + k * 60) as f64, *v);
        }
    }
    f.retrain_blocking();
    assert!(f.status(Signal::RequestRate).seasonal);
    // Each push republishes, with the seasonal model's forecasts.
    let mut t = start + (6336 * 300) as f64;
    c.bench_function("push_at, republish with the seasonal model", |b| {
        b.iter(|| {
            t += 60.0;
            f.push_at(black_box(Signal::RequestRate), t, black_box(50.0));
        })
    });
    c.bench_function("forecast read (seasonal, 6 h)", |b| {
        b.iter(|| {
            f.forecast(
                black_box(Signal::RequestRate),
                black_box(Duration::from_secs(6 * 3_600 + 90)),
            )
        })
    });
}

criterion_group!(benches, reads, retrain, seasonal_reads);
criterion_main!(benches);
