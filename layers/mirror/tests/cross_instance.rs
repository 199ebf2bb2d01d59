//! Read-your-writes across instance processes: two instances, each a
//! SessionMirrorLayer over its own `CachedStore<RedisStore>` (pub/sub
//! invalidation, and either the per-hit version check or acknowledged
//! writes) on one Redis. A client writes on A and, as soon as A answers, reads on
//! B, which held the previous version in its cache: B answers the write
//! every time.
//!
//! 10,000 pairs by default; `FORESIGHT_RYW_PAIRS` sets another count.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Path};
use axum::routing::{get, post};
use foresight_mirror::{Session, SessionMirrorLayer};
use foresight_store::{CachedStore, RedisStore};
use foresight_testkit::RedisServer;
use foresight_testkit::process::{self, InstanceProcess};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// `acked` for acknowledged writes, anything else for the version check.
const MODE_ENV: &str = "FORESIGHT_RYW_MODE";

/// The instances' entry point (a no-op in a normal test run).
#[test]
fn instance_process() {
    if process::instance_name().is_none() {
        return;
    }
    process::serve_axum_instance(async || {
        let url = std::env::var("REDIS_URL").expect("REDIS_URL");
        let mode = std::env::var(MODE_ENV).expect(MODE_ENV);
        let acked = mode == "acked";
        let redis = RedisStore::standalone(&url).expect("redis url");
        let bus = redis.invalidation_bus();
        assert!(bus.wait_connected(Duration::from_secs(10)).await);
        let store = CachedStore::builder(redis)
            .with_bus(bus)
            .with_version_check(!acked)
            .with_acknowledged_writes(acked)
            .build();
        assert_eq!(store.has_acknowledged_writes(), acked);
        Router::new()
            .route(
                "/n/{n}",
                post(
                    |Extension(s): Extension<Session>, Path(n): Path<u64>| async move {
                        s.insert("n", &n).await.unwrap();
                        "ok"
                    },
                ),
            )
            .route(
                "/n",
                get(|Extension(s): Extension<Session>| async move {
                    s.get::<u64>("n")
                        .await
                        .unwrap()
                        .unwrap_or(u64::MAX)
                        .to_string()
                }),
            )
            .layer(SessionMirrorLayer::new(store).with_secure(false))
    });
}

/// One keep-alive HTTP/1.1 connection.
struct Client(BufReader<TcpStream>);

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        Self(BufReader::new(TcpStream::connect(addr).await.unwrap()))
    }

    /// Status, `set-cookie` if any, body.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        cookie: &str,
    ) -> (u16, Option<String>, String) {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\ncookie: {cookie}\r\n\r\n"
        );
        self.0
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .unwrap();
        let mut status = 0;
        let mut length = 0;
        let mut set_cookie = None;
        loop {
            let mut line = String::new();
            self.0.read_line(&mut line).await.unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(code) = line.strip_prefix("HTTP/1.1 ") {
                status = code[..3].parse().unwrap();
            } else if let Some((name, value)) = line.split_once(": ") {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap();
                } else if name.eq_ignore_ascii_case("set-cookie") {
                    set_cookie = Some(value.split(';').next().unwrap().to_owned());
                }
            }
        }
        let mut body = vec![0; length];
        self.0.read_exact(&mut body).await.unwrap();
        (status, set_cookie, String::from_utf8(body).unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_acknowledged_on_a_is_read_on_b_every_time() {
    write_on_a_read_on_b("version").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_acknowledged_writes_a_write_on_a_is_read_on_b_every_time() {
    write_on_a_read_on_b("acked").await;
}

async fn write_on_a_read_on_b(mode: &str) {
    let pairs: u64 = std::env::var("FORESIGHT_RYW_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let redis = RedisServer::start();
    let env = [("REDIS_URL", redis.url()), (MODE_ENV, mode.to_owned())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = InstanceProcess::spawn("instance_process", "a", &env);
    let b = InstanceProcess::spawn("instance_process", "b", &env);
    let (mut on_a, mut on_b) = (Client::connect(a.addr).await, Client::connect(b.addr).await);

    let (status, cookie, _) = on_a.send("POST", "/n/0", "").await;
    assert_eq!(status, 200);
    let cookie = cookie.expect("a session cookie");
    let mut stale = 0;
    for n in 1..=pairs {
        // B caches the version it sees now.
        let (status, _, _) = on_b.send("GET", "/n", &cookie).await;
        assert_eq!(status, 200);
        let (status, _, _) = on_a.send("POST", &format!("/n/{n}"), &cookie).await;
        assert_eq!(status, 200, "write {n}");
        let (status, _, body) = on_b.send("GET", "/n", &cookie).await;
        assert_eq!(status, 200);
        if body != n.to_string() {
            stale += 1;
        }
    }
    eprintln!("read-your-writes across processes ({mode}): {pairs} pairs, {stale} stale reads");
    assert_eq!(stale, 0, "stale reads on B in {pairs} pairs ({mode})");
}
