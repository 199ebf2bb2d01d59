//! tower-sessions over Foresight's stores: an axum app with the `Session`
//! extractor, on a real socket, over MemoryStore and RedisStore; and the
//! adapter's own rules (store-issued ids, compare-and-set, expiry).
#![cfg(all(feature = "tower-sessions", feature = "redis"))]

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use foresight_store::tower_sessions::{TowerSessionStore, VERSION_KEY};
use foresight_store::{MemoryStore, RedisStore, SessionId, SessionStore};
use foresight_testkit::RedisServer;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_sessions::session::{Id, Record};
use tower_sessions::{Session, SessionManagerLayer, SessionStore as _};

async fn incr(session: Session) -> String {
    let n: u64 = session.get("n").await.unwrap().unwrap_or(0) + 1;
    session.insert("n", n).await.unwrap();
    n.to_string()
}

async fn serve<S: SessionStore + Clone>(store: TowerSessionStore<S>) -> std::net::SocketAddr {
    let app = Router::new()
        .route("/incr", get(incr))
        .layer(SessionManagerLayer::new(store).with_secure(false));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// One HTTP/1.1 request; the status, the `id` cookie set, and the body.
async fn get_incr(
    addr: std::net::SocketAddr,
    cookie: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let cookie = cookie.map_or(String::new(), |c| format!("cookie: id={c}\r\n"));
    let request = format!("GET /incr HTTP/1.1\r\nhost: t\r\n{cookie}connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let set = head.lines().find_map(|l| {
        let (name, value) = l.split_once(": ")?;
        let v = value
            .strip_prefix("id=")
            .filter(|_| name.eq_ignore_ascii_case("set-cookie"))?;
        Some(v.split(';').next().unwrap().to_owned())
    });
    (status, set, body.to_owned())
}

/// The cookie's id is one the store issued, and the data is in the store.
async fn sessions_stick<S: SessionStore + Clone>(store: S) {
    let addr = serve(TowerSessionStore::new(store.clone())).await;
    let (status, cookie, body) = get_incr(addr, None).await;
    assert_eq!((status, body.as_str()), (200, "1"));
    let cookie = cookie.expect("a new session sets its cookie");
    for expected in ["2", "3"] {
        let (status, _, body) = get_incr(addr, Some(&cookie)).await;
        assert_eq!((status, body.as_str()), (200, expected));
    }
    let id: Id = cookie.parse().unwrap();
    let stored = store
        .load(SessionId::from_u128(id.0 as u128))
        .await
        .unwrap()
        .expect("stored under the cookie's id");
    assert_eq!(stored.value.get::<u64>("n").unwrap(), Some(3));
    assert_eq!(stored.version.get(), 3, "created, then saved twice");
    assert!(
        !stored.value.contains_key(VERSION_KEY),
        "the version is not stored as data"
    );
    // A cookie the store never issued starts a new session.
    let forged = Id(42).to_string();
    let (status, fresh, body) = get_incr(addr, Some(&forged)).await;
    assert_eq!((status, body.as_str()), (200, "1"));
    assert_ne!(fresh.as_deref(), Some(forged.as_str()));
}

#[tokio::test]
async fn an_axum_app_on_tower_sessions_runs_over_memory_store() {
    sessions_stick(MemoryStore::new()).await;
}

#[tokio::test]
async fn an_axum_app_on_tower_sessions_runs_over_redis() {
    let server = RedisServer::start();
    sessions_stick(RedisStore::standalone(&server.url()).unwrap()).await;
}

fn record(data: &[(&str, Value)], expires_in: time::Duration) -> Record {
    Record {
        id: Id(7),
        data: data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<HashMap<_, _>>(),
        expiry_date: OffsetDateTime::now_utc() + expires_in,
    }
}

#[tokio::test]
async fn create_takes_a_fresh_id_from_the_store_not_the_proposed_one() {
    let store = MemoryStore::new();
    let adapter = TowerSessionStore::new(store.clone());
    let mut first = record(&[("a", Value::from(1))], time::Duration::minutes(10));
    let mut second = first.clone();
    adapter.create(&mut first).await.unwrap();
    adapter.create(&mut second).await.unwrap();
    assert_ne!(first.id, Id(7));
    assert_ne!(
        first.id, second.id,
        "the same proposed id twice gives two sessions"
    );
    for r in [&first, &second] {
        assert!(
            store
                .load(SessionId::from_u128(r.id.0 as u128))
                .await
                .unwrap()
                .is_some()
        );
    }
}

#[tokio::test]
async fn a_save_on_a_stale_load_is_refused_and_loses_nothing() {
    let store = MemoryStore::new();
    let adapter = TowerSessionStore::new(store.clone());
    let mut created = record(
        &[("cart", Value::from("empty"))],
        time::Duration::minutes(10),
    );
    adapter.create(&mut created).await.unwrap();
    let mut a = adapter.load(&created.id).await.unwrap().unwrap();
    let mut b = adapter.load(&created.id).await.unwrap().unwrap();
    a.data.insert("cart".into(), Value::from("apple"));
    b.data.insert("cart".into(), Value::from("pear"));
    adapter.save(&a).await.unwrap();
    let err = adapter.save(&b).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "session version conflict: expected v1, found v2"
    );
    let now = adapter.load(&created.id).await.unwrap().unwrap();
    assert_eq!(now.data["cart"], Value::from("apple"));
    assert_eq!(now.data[VERSION_KEY], Value::from(2));
}

#[tokio::test]
async fn without_its_version_a_save_writes_on_the_current_one() {
    let adapter = TowerSessionStore::new(MemoryStore::new());
    let mut created = record(&[("a", Value::from(1))], time::Duration::minutes(10));
    adapter.create(&mut created).await.unwrap();
    let mut cleared = adapter.load(&created.id).await.unwrap().unwrap();
    cleared.data.clear();
    adapter.save(&cleared).await.unwrap();
    let now = adapter.load(&created.id).await.unwrap().unwrap();
    assert_eq!(now.data.len(), 1, "only the version: {:?}", now.data);
    adapter.delete(&created.id).await.unwrap();
    let err = adapter.save(&cleared).await.unwrap_err();
    assert!(err.to_string().contains("no longer exists"), "{err}");
    assert!(adapter.load(&created.id).await.unwrap().is_none());
}

#[tokio::test]
async fn expiry_follows_the_record_and_the_absolute_lifetime() {
    let adapter = TowerSessionStore::new(MemoryStore::new())
        .with_absolute_lifetime(Duration::from_secs(3600));
    let mut created = record(&[], time::Duration::minutes(10));
    adapter.create(&mut created).await.unwrap();
    let left = |r: &Record| (r.expiry_date - OffsetDateTime::now_utc()).whole_seconds();
    let loaded = adapter.load(&created.id).await.unwrap().unwrap();
    assert!((590..=600).contains(&left(&loaded)), "{}", left(&loaded));
    // A save that moves the expiry to 30 minutes applies it…
    let mut later = loaded.clone();
    later.expiry_date = OffsetDateTime::now_utc() + time::Duration::minutes(30);
    adapter.save(&later).await.unwrap();
    let loaded = adapter.load(&created.id).await.unwrap().unwrap();
    assert!((1790..=1800).contains(&left(&loaded)), "{}", left(&loaded));
    // …but not past the absolute lifetime.
    let mut beyond = loaded.clone();
    beyond.expiry_date = OffsetDateTime::now_utc() + time::Duration::hours(5);
    adapter.save(&beyond).await.unwrap();
    let loaded = adapter.load(&created.id).await.unwrap().unwrap();
    assert!((3590..=3600).contains(&left(&loaded)), "{}", left(&loaded));
}

#[tokio::test]
async fn oversized_data_is_an_encode_error_and_writes_nothing() {
    let adapter = TowerSessionStore::new(MemoryStore::new()).with_size_limit(64);
    let mut big = record(
        &[("blob", Value::from("x".repeat(100)))],
        time::Duration::minutes(1),
    );
    let err = adapter.create(&mut big).await.unwrap_err();
    assert!(
        matches!(err, tower_sessions::session_store::Error::Encode(_)),
        "{err}"
    );
    assert!(
        err.to_string().contains("exceeds the limit of 64 bytes"),
        "{err}"
    );
    assert_eq!(big.id, Id(7), "nothing was created");
}
