//! Idle keep-alive connections and 200 slow-header clients against the
//! gateway process: each idle connection is closed at the configured idle
//! timeout (not before), each slow-header client gets its 408 at the
//! header-read timeout, and active clients keep being served. Their p99
//! with and without the idle crowd is printed (a measurement, not an
//! assertion: the machine is shared).
//!
//! 2,000 idle connections and a 10 s timeout by default (the header-read
//! timeout, 20 s, is apart from it), so that a debug
//! build holds them all open at once; the full run holds 10,000:
//!
//! ```text
//! FORESIGHT_IDLE_CONNECTIONS=10000 FORESIGHT_IDLE_TIMEOUT_SECS=40 \
//!     cargo test -p foresight-gateway --release --test idle -- --nocapture
//! ```

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use support::{Gateway, backend, config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

const SLOW_HEADERS: usize = 200;
const HEADER_TIMEOUT: Duration = Duration::from_secs(20);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The p99 latency of 8 closed loops of keep-alive requests over `run`.
async fn active_p99(gateway: SocketAddr, run: Duration) -> (Duration, usize) {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let end = Instant::now() + run;
    let loops: Vec<_> = (0..8)
        .map(|c| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < end {
                    let request = http::Request::get(format!("http://{gateway}/active"))
                        .header(http::header::COOKIE, format!("sid=active-{c}"))
                        .body(Empty::new())
                        .unwrap();
                    let sent = Instant::now();
                    let response = client.request(request).await.expect("active request");
                    assert_eq!(response.status(), 200);
                    response.into_body().collect().await.unwrap();
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for l in loops {
        all.extend(l.await.unwrap());
    }
    all.sort();
    (all[(all.len() * 99 / 100).min(all.len() - 1)], all.len())
}

/// Opens a keep-alive connection, completes one request on it and returns
/// it idle, with the time the request was sent: the gateway's idle timer
/// cannot have started before it.
async fn idle_connection(gateway: SocketAddr, n: usize) -> (TcpStream, Instant) {
    let mut stream = TcpStream::connect(gateway).await.expect("connect");
    let request =
        format!("GET /idle HTTP/1.1\r\nHost: app.example\r\nCookie: sid=idle-{n}\r\n\r\n");
    let sent = Instant::now();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "closed mid-answer"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    (stream, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_clients_are_closed_on_time_and_active_ones_served() {
    let idle_count = env_or("FORESIGHT_IDLE_CONNECTIONS", 2_000) as usize;
    let idle_timeout = Duration::from_secs(env_or("FORESIGHT_IDLE_TIMEOUT_SECS", 10));
    let backends = vec![
        ("alpha", backend("alpha").await, 1.0),
        ("beta", backend("beta").await, 1.0),
    ];
    let extra = format!(
        "[limits]\nidle_timeout = \"{}s\"\nheader_read_timeout = \"{}s\"\nmax_connections = {}\n\n",
        idle_timeout.as_secs(),
        HEADER_TIMEOUT.as_secs(),
        idle_count + SLOW_HEADERS + 100
    );
    let gateway = Gateway::start(&config(&backends, &extra)).await;
    let public = gateway.public;
    let (quiet_p99, quiet_n) = active_p99(public, Duration::from_secs(3)).await;

    // The idle crowd, opened 64 at a time.
    let opening = Arc::new(Semaphore::new(64));
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel::<()>(idle_count);
    let idle: Vec<_> = (0..idle_count)
        .map(|n| {
            let (opening, opened) = (opening.clone(), opened_tx.clone());
            tokio::spawn(async move {
                let permit = opening.acquire_owned().await.unwrap();
                let (mut stream, idle_since) = idle_connection(public, n).await;
                drop(permit);
                opened.send(()).await.unwrap();
                // Wait for the gateway to close it.
                let mut rest = Vec::new();
                let read =
                    tokio::time::timeout(idle_timeout * 3, stream.read_to_end(&mut rest)).await;
                assert!(read.is_ok(), "idle connection {n} never closed");
                assert!(rest.is_empty(), "unsolicited bytes on an idle connection");
                idle_since.elapsed()
            })
        })
        .collect();
    // The slow-header clients: a byte of header every half second.
    let slow: Vec<_> = (0..SLOW_HEADERS)
        .map(|n| {
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(public).await.expect("connect");
                let started = Instant::now();
                stream
                    .write_all(b"GET /slow-header HTTP/1.1\r\nHost: app.example\r\nX-Drip: ")
                    .await
                    .unwrap();
                let mut answer = Vec::new();
                loop {
                    let mut buf = [0u8; 512];
                    tokio::select! {
                        read = stream.read(&mut buf) => match read {
                            Ok(0) | Err(_) => break,
                            Ok(k) => answer.extend_from_slice(&buf[..k]),
                        },
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {
                            if stream.write_all(b"a").await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = n;
                (
                    String::from_utf8_lossy(&answer).into_owned(),
                    started.elapsed(),
                )
            })
        })
        .collect();
    // Active clients once the whole crowd is open and idle.
    let opened_at = Instant::now();
    for _ in 0..idle_count {
        opened_rx.recv().await.unwrap();
    }
    let open_took = opened_at.elapsed();
    let (crowded_p99, crowded_n) = active_p99(public, Duration::from_secs(3)).await;

    let mut idle_for = Vec::new();
    for task in idle {
        idle_for.push(task.await.unwrap());
    }
    let mut slow_for = Vec::new();
    for task in slow {
        let (answer, took) = task.await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "slow-header client got: {answer:?}"
        );
        slow_for.push(took);
    }
    idle_for.sort();
    slow_for.sort();
    eprintln!(
        "idle: active p99 {quiet_p99:?} ({quiet_n} requests) alone, {crowded_p99:?} ({crowded_n}) \
         beside {idle_count} idle (opened in {open_took:?}) and {SLOW_HEADERS} slow-header connections \
         ({:.2}x); idle closed {:?}..{:?} after their request (timeout {idle_timeout:?}); 408 after {:?}..{:?} (timeout {HEADER_TIMEOUT:?})",
        crowded_p99.as_secs_f64() / quiet_p99.as_secs_f64(),
        idle_for[0],
        idle_for[idle_for.len() - 1],
        slow_for[0],
        slow_for[slow_for.len() - 1],
    );
    // Closed at the timeout: never before it, and not long after (the
    // slack covers a loaded machine, not another timer).
    assert!(
        idle_for[0] >= idle_timeout - Duration::from_millis(100),
        "an idle connection was closed after {:?}",
        idle_for[0]
    );
    let last = idle_for[idle_for.len() - 1];
    assert!(
        last <= idle_timeout + Duration::from_secs(3),
        "an idle connection was still open {last:?} after its request"
    );
    assert!(
        slow_for[0] >= HEADER_TIMEOUT - Duration::from_millis(100),
        "a slow-header client was cut after {:?}",
        slow_for[0]
    );
}
