//! The forecaster at run time: background tasks on paused Tokio time, reads
//! during retraining, bounded memory, and the `foresight-core` traits.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use foresight_core::instance::InstanceId;
use foresight_forecast::{Forecaster, HealthSignal, LoadSignal, Signal};
use support::{DAY, daily_sine, ramp};

#[tokio::test(start_paused = true)]
async fn background_tasks_close_steps_and_retrain() {
    let f = Forecaster::builder()
        .with_step(Duration::from_secs(1))
        .with_retrain_every(Duration::from_secs(120))
        .with_system_sampler(false)
        .spawn()
        .expect("inside a runtime");
    assert!(f.forecast(Signal::RequestRate, Duration::ZERO).is_none());

    // 600 steps of a cycling request rate: `rate` requests per second.
    let rates = daily_sine(600, 20.0, 8.0, 0.0, 7);
    for rate in &rates {
        for _ in 0..rate.round() as usize {
            f.record(Signal::RequestRate, 1.0);
        }
        f.record(Signal::Latency, 0.05);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Let the last retrain (in spawn_blocking) land.
    while !f.status(Signal::RequestRate).modelled {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let status = f.status(Signal::RequestRate);
    assert!(status.samples >= 590, "{status:?}");
    let fc = f
        .forecast(Signal::RequestRate, Duration::from_secs(5))
        .expect("a forecast");
    assert!(fc.mean > 5.0 && fc.mean < 35.0, "{fc:?}");
    let latency = f
        .forecast(Signal::Latency, Duration::from_secs(3))
        .expect("latency");
    assert!((latency.mean - 0.05).abs() < 1e-9);
}

#[tokio::test(start_paused = true)]
async fn host_sampler_feeds_cpu_and_memory() {
    let f = Forecaster::builder()
        .with_step(Duration::from_secs(1))
        .spawn()
        .expect("inside a runtime");
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    while f.status(Signal::Memory).samples < 3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let memory = f.forecast(Signal::Memory, Duration::ZERO).expect("sampled");
    assert!(memory.mean > 0.0);
    let cpu = f.forecast(Signal::Cpu, Duration::ZERO).expect("sampled");
    assert!((0.0..=100.0 * 1024.0).contains(&cpu.mean));
    assert!(f.forecast(Signal::NetworkIn, Duration::ZERO).is_some());
}

#[test]
fn spawn_outside_a_runtime_is_an_error() {
    let err = Forecaster::builder().spawn().expect_err("no runtime");
    assert!(std::error::Error::source(&err).is_some());
}

/// Reads are answered from the snapshot while a long retrain runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retraining_never_blocks_reads() {
    let f = Forecaster::builder()
        .with_step(Duration::from_secs(10))
        .with_capacity(100_000)
        .with_system_sampler(false)
        .build()
        .expect("valid configuration");
    for v in daily_sine(100_000, 50.0, 10.0, 1.0, 8) {
        f.push(Signal::RequestRate, v);
    }
    // 0: before training, 1: training, 2: trained.
    let phase = Arc::new(AtomicU8::new(0));
    let reading = Arc::new(AtomicBool::new(false));
    let reader = {
        let (f, phase, reading) = (f.clone(), phase.clone(), reading.clone());
        std::thread::spawn(move || {
            let (mut during, mut answered) = (0u64, 0u64);
            loop {
                let before = phase.load(Ordering::Acquire);
                if before == 2 {
                    break;
                }
                let fc = f.forecast(Signal::RequestRate, Duration::from_secs(30));
                answered += u64::from(fc.is_some());
                // A read counts when it began and ended while training ran.
                if before == 1 && phase.load(Ordering::Acquire) == 1 {
                    during += 1;
                }
                reading.store(true, Ordering::Release);
            }
            (during, answered)
        })
    };
    // Training starts once the reader is in its loop.
    while !reading.load(Ordering::Acquire) {
        tokio::task::yield_now().await;
    }
    phase.store(1, Ordering::Release);
    f.retrain().await.expect("retrain completes");
    phase.store(2, Ordering::Release);
    let (during, answered) = reader.join().expect("reader");
    // A read blocked by training could complete at most once or twice
    // between the model's installation and the end of `retrain`.
    assert!(
        during >= 100,
        "only {during} reads completed while training ran"
    );
    assert!(answered > during);
    assert!(f.status(Signal::RequestRate).modelled);
}

#[test]
fn memory_stays_bounded_over_a_million_samples() {
    let f = Forecaster::builder()
        .with_capacity(2_000)
        .with_max_instances(16)
        .with_system_sampler(false)
        .build()
        .expect("valid configuration");
    let ids: Vec<InstanceId> = (0..64).map(|i| InstanceId::new(format!("i{i}"))).collect();
    for i in 0..1_000_000u32 {
        f.record(Signal::RequestRate, 1.0);
        f.record_instance(&ids[i as usize % ids.len()], 0.01);
        if i % 100 == 99 {
            f.tick();
        }
        if i % 200_000 == 199_999 {
            f.retrain_blocking();
        }
    }
    let status = f.status(Signal::RequestRate);
    assert_eq!(status.samples, 2_000);
    assert_eq!(status.capacity, 2_000);
    let tracked = ids
        .iter()
        .filter(|id| f.instance_status(id).is_some())
        .count();
    assert_eq!(tracked, 16);
    for id in &ids[..16] {
        assert!(f.instance_status(id).expect("tracked").samples <= 2_000);
    }
    assert!(f.dropped_instance_samples() > 0);
    f.forget_instance(&ids[0]);
    assert!(f.instance_status(&ids[0]).is_none());
}

#[test]
fn consumers_use_the_core_traits() {
    let f = Forecaster::builder()
        .with_step(Duration::from_secs(10))
        .with_health(Signal::Latency, 0.5)
        .with_system_sampler(false)
        .build()
        .expect("valid configuration");
    let slow = InstanceId::new("slow");
    let fine = InstanceId::new("fine");
    // `slow`'s latency climbs 2 ms per step toward the 0.5 s threshold.
    for latency in ramp(DAY, 0.1, 0.002, 0.0, 9) {
        f.record_instance(&slow, latency);
        f.record_instance(&fine, 0.05);
        f.record(Signal::RequestRate, 100.0);
        f.tick();
    }
    f.retrain_blocking();

    let health: Arc<dyn HealthSignal> = Arc::new(f.clone());
    // Latency is at 0.674 s: already degraded.
    assert_eq!(
        health.predicted_degradation(&slow, Duration::from_secs(60)),
        Some(Duration::ZERO)
    );
    assert_eq!(
        health.predicted_degradation(&fine, Duration::from_secs(120)),
        None
    );
    assert_eq!(
        health.predicted_degradation(&InstanceId::new("unknown"), Duration::from_secs(60)),
        None
    );

    let load: Arc<dyn LoadSignal> = Arc::new(f.signal(Signal::RequestRate));
    let fc = load.forecast(Duration::from_secs(60)).expect("a forecast");
    assert!((fc.mean - 10.0).abs() < 1e-6, "{fc:?}");
    assert_eq!(load.will_exceed(1_000.0, Duration::from_secs(120)), None);
    assert_eq!(
        load.will_exceed(5.0, Duration::from_secs(120)),
        Some(Duration::ZERO)
    );
}

#[test]
fn rising_instance_latency_is_predicted_before_it_degrades() {
    let f = Forecaster::builder()
        .with_step(Duration::from_secs(10))
        .with_health(Signal::Latency, 0.5)
        .with_system_sampler(false)
        .build()
        .expect("valid configuration");
    let id = InstanceId::new("warming");
    // 1 ms per step from 0.1 s: 0.476 s after 376 steps, 24 steps short of 0.5 s.
    for latency in ramp(377, 0.1, 0.001, 0.0, 10) {
        f.record_instance(&id, latency);
        f.tick();
    }
    f.retrain_blocking();
    assert!(f.instance_status(&id).expect("tracked").modelled);
    let within = Duration::from_secs(120);
    let when = f.instance_will_degrade(&id, within);
    assert_eq!(when, None, "24 steps away is beyond 12");
    for latency in ramp(20, 0.477, 0.001, 0.0, 11) {
        f.record_instance(&id, latency);
        f.tick();
    }
    // Now at 0.496 s: passes 0.5 s in 5 steps.
    let when = f.instance_will_degrade(&id, within).expect("predicted");
    assert!(
        when > Duration::ZERO && when <= Duration::from_secs(60),
        "{when:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn request_guards_record_on_drop_even_when_cancelled() {
    let f = Forecaster::builder()
        .with_step(Duration::from_secs(1))
        .with_system_sampler(false)
        .build()
        .expect("valid configuration");
    let id = InstanceId::new("a");
    {
        let _ok = f.track_request(Some(id.clone()));
        tokio::time::advance(Duration::from_millis(200)).await;
    }
    {
        let mut failed = f.track_request(None);
        failed.fail();
        tokio::time::advance(Duration::from_millis(400)).await;
    }
    // A request future dropped before completion still records its guard.
    let f2 = f.clone();
    let cancelled = tokio::spawn(async move {
        let _guard = f2.track_request(Some(InstanceId::new("a")));
        std::future::pending::<()>().await;
    });
    // Let the request start before time moves.
    tokio::task::yield_now().await;
    tokio::time::advance(Duration::from_millis(600)).await;
    cancelled.abort();
    assert!(cancelled.await.expect_err("aborted").is_cancelled());
    f.tick();

    let now = |s| f.forecast(s, Duration::ZERO).expect("a sample").mean;
    assert_eq!(now(Signal::RequestRate), 3.0);
    assert_eq!(now(Signal::Errors), 1.0);
    assert!((now(Signal::Latency) - 0.4).abs() < 1e-6);
    let instance = f
        .instance_forecast(&id, Duration::ZERO)
        .expect("tracked")
        .mean;
    assert!((instance - 0.4).abs() < 1e-6, "{instance}");
}
