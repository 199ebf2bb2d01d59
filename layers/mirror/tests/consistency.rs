//! Failure paths that must not turn into wrong data or wrong answers: a
//! failed idle-timeout touch after a read, blind writes under each
//! `BlindWritePolicy`, a full store. Metrics are read from a recorder
//! installed for this test binary; the tests run one at a time so that
//! counts are their own.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Extension;
use axum::routing::get;
use foresight_mirror::{BlindWritePolicy, Session, SessionError, SessionMirrorLayer};
use foresight_store::{
    Expiry, MemoryStore, SessionData, SessionId, SessionStore, StoreError, StoreFuture, Version,
    Versioned,
};
use http::header::{COOKIE, RETRY_AFTER};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};
use tower::ServiceExt;

/// Counters by name, for the whole test binary.
#[derive(Debug, Default)]
struct Counters(Mutex<HashMap<String, Arc<AtomicU64>>>);

impl Counters {
    fn slot(&self, name: &str) -> Arc<AtomicU64> {
        let mut map = self.0.lock().unwrap();
        map.entry(name.to_owned()).or_default().clone()
    }
}

impl metrics::Recorder for Counters {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.slot(key.name()))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// The recorder, installed once, and a lock that runs the tests one by one.
fn counters() -> &'static Counters {
    static COUNTERS: OnceLock<&'static Counters> = OnceLock::new();
    COUNTERS.get_or_init(|| {
        let counters: &'static Counters = Box::leak(Box::default());
        metrics::set_global_recorder(counters).expect("no other recorder");
        counters
    })
}

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn count(name: &str) -> u64 {
    counters()
        .slot(name)
        .load(std::sync::atomic::Ordering::SeqCst)
}

/// A memory store whose touches fail as an unreachable backend's would.
#[derive(Clone, Debug, Default)]
struct FailingTouch(MemoryStore);

impl SessionStore for FailingTouch {
    fn create<'a>(&'a self, data: &'a SessionData, expiry: Expiry) -> StoreFuture<'a, SessionId> {
        self.0.create(data, expiry)
    }
    fn load(&self, id: SessionId) -> StoreFuture<'_, Option<Versioned<SessionData>>> {
        self.0.load(id)
    }
    fn save<'a>(
        &'a self,
        id: SessionId,
        data: &'a SessionData,
        expected: Version,
    ) -> StoreFuture<'a, Version> {
        self.0.save(id, data, expected)
    }
    fn delete(&self, id: SessionId, expected: Option<Version>) -> StoreFuture<'_, bool> {
        self.0.delete(id, expected)
    }
    fn touch(&self, _id: SessionId, _idle: Duration) -> StoreFuture<'_, bool> {
        Box::pin(async { Err(StoreError::unavailable("touch refused")) })
    }
}

fn fail(e: SessionError) -> (StatusCode, String) {
    use foresight_core::HttpError;
    (e.status(), e.to_string())
}

fn request(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(path);
    if let Some(cookie) = cookie {
        builder = builder.header(COOKIE, cookie);
    }
    builder.body(Body::empty()).unwrap()
}

async fn text(response: http::Response<Body>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn session_with(store: &impl SessionStore, pairs: &[(&str, u64)]) -> (SessionId, String) {
    let mut data = SessionData::new();
    for (k, v) in pairs {
        data.insert(*k, v).unwrap();
    }
    let id = store.create(&data, Expiry::default()).await.unwrap();
    (id, format!("__Host-session={id}"))
}

async fn read_n(Extension(s): Extension<Session>) -> Result<String, (StatusCode, String)> {
    let n: u64 = s.get("n").await.map_err(fail)?.unwrap_or(0);
    Ok(n.to_string())
}

#[tokio::test]
async fn a_failed_touch_does_not_fail_the_read_and_is_counted() {
    let _serial = SERIAL.lock().await;
    let store = FailingTouch::default();
    let (_, cookie) = session_with(&store, &[("n", 41)]).await;
    let app = Router::new()
        .route("/read", get(read_n))
        .layer(SessionMirrorLayer::new(store.clone()));
    let before = count("foresight_mirror_touch_errors_total");
    let response = app
        .clone()
        .oneshot(request("/read", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "41");
    assert_eq!(count("foresight_mirror_touch_errors_total"), before + 1);

    // A shadow request warms the session and is answered 204 all the same.
    let mut shadow = request("/read", Some(&cookie));
    shadow.headers_mut().insert(
        foresight_core::ROLE_HEADER.clone(),
        "shadow".parse().unwrap(),
    );
    let response = app.oneshot(shadow).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(count("foresight_mirror_touch_errors_total"), before + 2);
}

/// A handler that sets `key = 7` without reading, while another writer
/// saves `n = 1, theme = 2` between its load and its save.
fn blind_app(store: &MemoryStore, key: &'static str, layer: SessionMirrorLayer) -> Router {
    let behind = store.clone();
    let blind = move |Extension(s): Extension<Session>| {
        let behind = behind.clone();
        async move {
            s.insert(key, &7).await.map_err(fail)?;
            let id = s.id().await.unwrap().unwrap();
            let current = behind.load(id).await.unwrap().unwrap();
            let mut data = current.value.clone();
            data.insert("n", &1).unwrap();
            data.insert("theme", &2).unwrap();
            behind.save(id, &data, current.version).await.unwrap();
            Ok::<_, (StatusCode, String)>("set")
        }
    };
    Router::new().route("/blind", get(blind)).layer(layer)
}

async fn stored(store: &MemoryStore, id: SessionId, key: &str) -> Option<u64> {
    let now = store.load(id).await.unwrap().unwrap();
    now.value.get::<u64>(key).unwrap()
}

#[tokio::test]
async fn under_the_conflict_policy_a_lost_blind_write_is_a_409() {
    let _serial = SERIAL.lock().await;
    let store = MemoryStore::new();
    let (id, cookie) = session_with(&store, &[("n", 0)]).await;
    let layer =
        SessionMirrorLayer::new(store.clone()).with_blind_write_policy(BlindWritePolicy::Conflict);
    let reapplied = count("foresight_mirror_blind_writes_reapplied_total");
    let refused = count("foresight_mirror_blind_writes_refused_total");
    let response = blind_app(&store, "n", layer)
        .oneshot(request("/blind", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    // The newer version stands, untouched.
    assert_eq!(stored(&store, id, "n").await, Some(1));
    assert_eq!(stored(&store, id, "theme").await, Some(2));
    assert_eq!(
        count("foresight_mirror_blind_writes_reapplied_total"),
        reapplied
    );
    assert_eq!(
        count("foresight_mirror_blind_writes_refused_total"),
        refused + 1
    );
}

#[tokio::test]
async fn under_the_reapply_policy_a_lost_blind_write_is_reapplied_and_counted() {
    let _serial = SERIAL.lock().await;
    let store = MemoryStore::new();
    let (id, cookie) = session_with(&store, &[("n", 0)]).await;
    // Reapply is the default; `role` alone is protected.
    let layer = SessionMirrorLayer::new(store.clone())
        .with_blind_write_policy_for("role", BlindWritePolicy::Conflict);
    let reapplied = count("foresight_mirror_blind_writes_reapplied_total");
    let response = blind_app(&store, "n", layer.clone())
        .oneshot(request("/blind", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(stored(&store, id, "n").await, Some(7));
    assert_eq!(
        stored(&store, id, "theme").await,
        Some(2),
        "their other keys kept"
    );
    assert_eq!(
        count("foresight_mirror_blind_writes_reapplied_total"),
        reapplied + 1
    );

    // A blind write of the protected key is refused.
    let response = blind_app(&store, "role", layer)
        .oneshot(request("/blind", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(stored(&store, id, "role").await, None);
    assert_eq!(
        count("foresight_mirror_blind_writes_reapplied_total"),
        reapplied + 1
    );
}

#[tokio::test]
async fn a_full_store_is_a_503_with_retry_after() {
    let _serial = SERIAL.lock().await;
    let store = MemoryStore::new().with_capacity(1);
    let write = |Extension(s): Extension<Session>| async move {
        s.insert("n", &1).await.map_err(fail)?;
        Ok::<_, (StatusCode, String)>("ok")
    };
    let app = Router::new()
        .route("/write", get(write))
        .layer(SessionMirrorLayer::new(store.clone()));
    let first = app.clone().oneshot(request("/write", None)).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = app.oneshot(request("/write", None)).await.unwrap();
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.headers()[RETRY_AFTER], "1");
    assert_eq!(store.stored(), 1);
}
