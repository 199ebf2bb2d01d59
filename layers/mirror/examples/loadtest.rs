//! Loopback load test: the same axum handler that reads (`/read`) or
//! increments (`/incr`) a counter in the session, behind no session layer,
//! SessionMirrorLayer over MemoryStore, RedisStore and
//! CachedStore<RedisStore> (the default: acknowledged writes; opted out to
//! announcements alone; opted out with the version check), and
//! tower-sessions 0.14 with its MemoryStore and
//! with tower-sessions-redis-store 0.16 on the same Redis, measured with
//! `wrk` one after the other in one run.
//!
//! Each wrk thread has its own session (created beforehand); by default
//! there are as many threads as connections, so a connection's requests
//! never race another connection's on the same session.
//!
//! ```text
//! cargo run --release -p foresight-mirror --example loadtest -- [seconds] [connections] [threads] [rounds]
//! ```
//!
//! Needs `wrk`, `redis-server` and `redis-cli` on `PATH`. Prints a Markdown
//! table of medians over the rounds (non-2xx: the sum over all rounds).

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use foresight_mirror::{Session, SessionMirrorLayer};
use foresight_store::{CachedStore, MemoryStore, RedisStore};
use foresight_testkit::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config as FredConfig, Pool};

async fn mirror_read(Extension(s): Extension<Session>) -> String {
    let n: u64 = s.get("n").await.ok().flatten().unwrap_or(0);
    n.to_string()
}

async fn mirror_incr(Extension(s): Extension<Session>) -> String {
    let n: u64 = s.get("n").await.ok().flatten().unwrap_or(0);
    let _ = s.insert("n", &(n + 1)).await;
    (n + 1).to_string()
}

async fn ts_read(s: tower_sessions::Session) -> String {
    let n: u64 = s.get("n").await.ok().flatten().unwrap_or(0);
    n.to_string()
}

async fn ts_incr(s: tower_sessions::Session) -> String {
    let n: u64 = s.get("n").await.ok().flatten().unwrap_or(0);
    let _ = s.insert("n", n + 1).await;
    (n + 1).to_string()
}

async fn bare_read() -> String {
    "0".to_owned()
}

fn mirror_app(layer: SessionMirrorLayer) -> Router {
    Router::new()
        .route("/read", get(mirror_read))
        .route("/incr", get(mirror_incr))
        .layer(layer)
}

fn ts_app<S: tower_sessions::SessionStore + Clone>(store: S) -> Router {
    Router::new()
        .route("/read", get(ts_read))
        .route("/incr", get(ts_incr))
        .layer(tower_sessions::SessionManagerLayer::new(store).with_secure(false))
}

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// One request without a cookie to `/incr`; returns the `name=value` of the
/// session cookie set.
async fn new_session(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /incr HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("set-cookie")
            .then(|| value.trim().split(';').next().unwrap().to_owned())
    })
}

struct Run {
    rps: f64,
    non_2xx: u64,
    p99: String,
}

fn wrk(addr: SocketAddr, path: &str, cookies: &[String], connections: usize, seconds: u64) -> Run {
    let mut script = tempfile_path();
    {
        let mut file = std::fs::File::create(&script).unwrap();
        writeln!(file, "local cookies = {{").unwrap();
        for cookie in cookies {
            writeln!(file, "  \"{cookie}\",").unwrap();
        }
        writeln!(file, "}}").unwrap();
        writeln!(
            file,
            "local n = 0\n\
             function setup(thread) n = n + 1; thread:set(\"cookie\", cookies[n]) end\n\
             function init(args) if cookie then wrk.headers[\"Cookie\"] = cookie end end"
        )
        .unwrap();
    }
    let threads = cookies.len().max(1).to_string();
    let output = Command::new("wrk")
        .args([
            "-t",
            &threads,
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if std::env::var_os("LOADTEST_RAW").is_some() {
        eprintln!(
            "{}\n{text}",
            std::fs::read_to_string(&script).unwrap_or_default()
        );
    }
    let _ = std::fs::remove_file(&mut script);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected wrk output:\n{text}"));
    let non_2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    Run { rps, non_2xx, p99 }
}

fn tempfile_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("foresight-wrk-{}.lua", std::process::id()))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let connections: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    // One session per wrk thread; with fewer threads than connections, the
    // connections of a thread share its session (fine for `/read`, but
    // concurrent increments of one session then conflict).
    let threads: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(connections);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);

    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();

    let ours_redis = RedisStore::standalone(&redis.url()).unwrap();
    // The default builder: acknowledged writes on one Redis server.
    let cached_redis = {
        let store = RedisStore::standalone(&redis.url())
            .unwrap()
            .with_key_prefix("cached:session:");
        let bus = store.invalidation_bus();
        assert!(bus.wait_connected(Duration::from_secs(10)).await);
        let cache = CachedStore::builder(store).with_bus(bus).build();
        assert!(cache.has_acknowledged_writes());
        // Answers from memory once its first heartbeat came back.
        while !cache.is_trusted() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cache
    };
    // Opted out: announcements alone (bus-only consistency).
    let bus_only_redis = {
        let store = RedisStore::standalone(&redis.url())
            .unwrap()
            .with_key_prefix("bus-only:session:");
        let bus = store.invalidation_bus();
        assert!(bus.wait_connected(Duration::from_secs(10)).await);
        CachedStore::builder(store)
            .with_bus(bus)
            .with_acknowledged_writes(false)
            .build()
    };
    // Opted out of acknowledged writes, with the version check instead.
    let checked_redis = {
        let store = RedisStore::standalone(&redis.url())
            .unwrap()
            .with_key_prefix("checked:session:");
        let bus = store.invalidation_bus();
        assert!(bus.wait_connected(Duration::from_secs(10)).await);
        CachedStore::builder(store)
            .with_bus(bus)
            .with_acknowledged_writes(false)
            .with_version_check(true)
            .build()
    };
    let fred = Pool::new(
        FredConfig::from_url(&redis.url()).unwrap(),
        None,
        None,
        None,
        6,
    )
    .unwrap();
    let _connection = fred.connect();
    fred.wait_for_connect().await.unwrap();

    let variants: Vec<(&str, Router)> = vec![
        (
            "bare axum (no session layer)",
            Router::new()
                .route("/read", get(bare_read))
                .route("/incr", get(bare_read)),
        ),
        (
            "SessionMirrorLayer + MemoryStore",
            mirror_app(SessionMirrorLayer::new(MemoryStore::new())),
        ),
        (
            "SessionMirrorLayer + RedisStore",
            mirror_app(SessionMirrorLayer::new(ours_redis)),
        ),
        (
            "SessionMirrorLayer + CachedStore<RedisStore> (default: acknowledged writes)",
            mirror_app(SessionMirrorLayer::new(cached_redis)),
        ),
        (
            "SessionMirrorLayer + CachedStore<RedisStore>, bus only (opt-out)",
            mirror_app(SessionMirrorLayer::new(bus_only_redis)),
        ),
        (
            "SessionMirrorLayer + CachedStore<RedisStore>, version check (opt-out)",
            mirror_app(SessionMirrorLayer::new(checked_redis)),
        ),
        (
            "tower-sessions 0.14 + MemoryStore",
            ts_app(tower_sessions::MemoryStore::default()),
        ),
        (
            "tower-sessions 0.14 + tower-sessions-redis-store 0.16",
            ts_app(tower_sessions_redis_store::RedisStore::new(fred)),
        ),
    ];

    // Start every server and make its sessions first, then measure the
    // variants round-robin, `rounds` times, and keep each one's median: on a
    // shared machine, background load then hits every variant alike.
    let mut targets = Vec::new();
    for (name, app) in variants {
        let addr = serve(app).await;
        let mut cookies = Vec::new();
        for _ in 0..threads {
            cookies.extend(new_session(addr).await);
        }
        if name.starts_with("bare") {
            cookies = vec![String::new(); threads];
        } else {
            assert_eq!(cookies.len(), threads, "{name}: no session cookie");
        }
        targets.push((name, addr, cookies));
    }
    let mut samples: Vec<(&str, &str, Vec<Run>)> = Vec::new();
    for round in 0..rounds {
        for (name, addr, cookies) in &targets {
            for path in ["/read", "/incr"] {
                let (addr, cookies) = (*addr, cookies.clone());
                let run = tokio::task::spawn_blocking(move || {
                    wrk(addr, path, &cookies, connections, seconds)
                })
                .await
                .unwrap();
                eprintln!(
                    "round {round}: {name} {path}: {:.0} req/s, p99 {}, non-2xx {}",
                    run.rps, run.p99, run.non_2xx
                );
                match samples.iter_mut().find(|(n, p, _)| n == name && *p == path) {
                    Some((_, _, runs)) => runs.push(run),
                    None => samples.push((name, path, vec![run])),
                }
            }
        }
    }
    let rows: Vec<(&str, &str, Run)> = samples
        .into_iter()
        .map(|(name, path, mut runs)| {
            runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
            let non_2xx = runs.iter().map(|r| r.non_2xx).sum();
            let mut median = runs.swap_remove(runs.len() / 2);
            median.non_2xx = non_2xx;
            (name, path, median)
        })
        .collect();

    let find = |name: &str, path: &str| {
        rows.iter()
            .find(|(n, p, _)| n.starts_with(name) && *p == path)
            .map(|(_, _, r)| r.rps)
            .unwrap()
    };
    println!(
        "| variant | path | req/s | x bare axum | x tower-sessions (same backend) | p99 | non-2xx |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (name, path, run) in &rows {
        let bare = find("bare", path);
        let reference = if name.starts_with("tower-sessions") {
            None
        } else if name.contains("Memory") {
            Some(find("tower-sessions 0.14 + MemoryStore", path))
        } else if name.contains("Redis") {
            Some(find(
                "tower-sessions 0.14 + tower-sessions-redis-store",
                path,
            ))
        } else {
            None
        };
        println!(
            "| {name} | {path} | {:.0} | {:.2} | {} | {} | {} |",
            run.rps,
            run.rps / bare,
            reference.map_or("—".to_owned(), |r| format!("{:.2}", run.rps / r)),
            run.p99,
            run.non_2xx
        );
    }
    drop(redis);
}
