//! Criterion benches of the forecaster: the request-path read, `record`,
//! closing a step, and one retrain on two weeks of 5-minute samples.
//!
//! `cargo bench -p foresight-forecast --bench forecast`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use foresight_forecast::model::{ModelConfig, Times, train};
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
}

criterion_group!(benches, reads, retrain);
criterion_main!(benches);
