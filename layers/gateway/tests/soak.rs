//! Soak: the gateway process under a steady half of its saturation, with
//! shadow copies on (the default policy), for `FORESIGHT_SOAK_SECS`
//! seconds (default 60; 600 for the full run). Its resident memory must
//! stay flat (under 5 % growth from the fifth of the run on: minute 2 of a
//! 10-minute run) and no request may fail.
//!
//! ```text
//! FORESIGHT_SOAK_SECS=600 cargo test -p foresight-gateway --release --test soak -- --nocapture
//! ```

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use support::{Gateway, backend, config};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Closed loops that measure saturation.
const CONNECTIONS: usize = 32;
/// Requests in flight at most while soaking: more than that waiting means
/// the gateway fell behind. The warm-up runs this many loops, so that the
/// memory a burst of that size takes is in the baseline, not counted as
/// growth.
const MAX_IN_FLIGHT: usize = CONNECTIONS * 4;
const SESSIONS: u64 = 2_000;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build_http()
}

/// One request of session `n`; true when it was answered 200 in full.
async fn request(client: &HttpClient, gateway: &Gateway, n: u64) -> bool {
    let request = http::Request::get(format!("http://{}/soak", gateway.public))
        .header(http::header::COOKIE, format!("sid=soak-{}", n % SESSIONS))
        .body(Empty::new())
        .unwrap();
    match client.request(request).await {
        Ok(response) => {
            let ok = response.status() == http::StatusCode::OK;
            response.into_body().collect().await.is_ok() && ok
        }
        Err(_) => false,
    }
}

/// Requests per second answered by `loops` closed loops over `run`.
async fn saturation(
    client: &HttpClient,
    gateway: &Arc<Gateway>,
    loops: usize,
    run: Duration,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + run;
    let loops: Vec<_> = (0..loops as u64)
        .map(|c| {
            let (client, gateway, done) = (client.clone(), gateway.clone(), done.clone());
            tokio::spawn(async move {
                let mut n = c;
                while Instant::now() < end {
                    assert!(request(&client, &gateway, n).await, "saturation run failed");
                    done.fetch_add(1, Ordering::Relaxed);
                    n += loops as u64;
                }
            })
        })
        .collect();
    for l in loops {
        l.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / run.as_secs_f64()
}

/// Resident set size of `pid` in KiB, from `/proc`.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_saturation_for_a_while_keeps_memory_flat_and_fails_nothing() {
    let secs: u64 = std::env::var("FORESIGHT_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let backends = vec![
        ("alpha", backend("alpha").await, 1.0),
        ("beta", backend("beta").await, 1.0),
        ("gamma", backend("gamma").await, 1.0),
    ];
    let gateway = Arc::new(Gateway::start(&config(&backends, "")).await);
    let pid = gateway.child.id().unwrap();
    let client = client();

    // Warm up with as many requests in flight as the soak allows, then
    // measure what the gateway answers flat out.
    saturation(&client, &gateway, MAX_IN_FLIGHT, Duration::from_secs(2)).await;
    let max = saturation(&client, &gateway, CONNECTIONS, Duration::from_secs(3)).await;
    let rate = (max / 2.0).max(1.0);
    eprintln!("soak: saturation {max:.0} req/s, soaking at {rate:.0} req/s for {secs} s");

    // Open loop at half of it: a request every 1/rate, whatever the answers.
    let failed = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut behind = 0u64;
    let mut sent = 0u64;
    let mut samples = Vec::new();
    let start = Instant::now();
    let mut next_sample = start;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while start.elapsed() < Duration::from_secs(secs) {
        tick.tick().await;
        if Instant::now() >= next_sample {
            samples.push((start.elapsed(), rss_kib(pid)));
            next_sample += Duration::from_secs(1);
        }
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            behind += 1;
            continue;
        };
        let (client, gateway, failed) = (client.clone(), gateway.clone(), failed.clone());
        let n = sent;
        sent += 1;
        tokio::spawn(async move {
            if !request(&client, &gateway, n).await {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    let _ = in_flight.acquire_many(MAX_IN_FLIGHT as u32).await.unwrap();

    let from = Duration::from_secs(secs) / 5;
    let baseline = samples
        .iter()
        .find(|(at, _)| *at >= from)
        .map(|s| s.1)
        .expect("a sample after the first fifth");
    let last = samples.last().unwrap().1;
    let peak = samples
        .iter()
        .filter(|(at, _)| *at >= from)
        .map(|s| s.1)
        .max()
        .unwrap();
    let growth = (peak as f64 - baseline as f64) / baseline as f64;
    let timeline: Vec<String> = samples
        .iter()
        .step_by(samples.len().div_ceil(20).max(1))
        .map(|(at, kib)| format!("{}s {kib}", at.as_secs()))
        .collect();
    eprintln!("soak: RSS KiB over time: {}", timeline.join(", "));
    let failed = failed.load(Ordering::Relaxed);
    eprintln!(
        "soak: {sent} requests, {failed} failed, {behind} not sent (gateway behind); \
         gateway RSS {} KiB at start, {baseline} KiB at {from:?}, peak {peak} KiB, {last} KiB at the end ({:+.1} %)",
        samples[0].1,
        growth * 100.0
    );
    assert_eq!(failed, 0, "requests failed during the soak");
    assert_eq!(behind, 0, "the gateway fell behind half its saturation");
    assert!(
        growth < 0.05,
        "gateway RSS grew {:.1} % after the first fifth ({baseline} → {peak} KiB)",
        growth * 100.0
    );
}
