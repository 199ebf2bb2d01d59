//! SessionMirrorLayer end to end over an axum router.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Extension;
use axum::routing::get;
use foresight_mirror::{DisjointKeys, Session, SessionError, SessionMirrorLayer};
use foresight_store::{
    Expiry, MemoryStore, SessionData, SessionId, SessionStore, StoreFuture, Version, Versioned,
};
use http::header::{COOKIE, RETRY_AFTER, SET_COOKIE};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::Barrier;
use tower::ServiceExt;

/// A store that counts the operations reaching it.
#[derive(Clone, Debug, Default)]
struct Counting {
    inner: MemoryStore,
    loads: Arc<AtomicUsize>,
    writes: Arc<AtomicUsize>,
    touches: Arc<AtomicUsize>,
}

impl SessionStore for Counting {
    fn create<'a>(&'a self, data: &'a SessionData, expiry: Expiry) -> StoreFuture<'a, SessionId> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.create(data, expiry)
    }
    fn load(&self, id: SessionId) -> StoreFuture<'_, Option<Versioned<SessionData>>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(id)
    }
    fn save<'a>(
        &'a self,
        id: SessionId,
        data: &'a SessionData,
        expected: Version,
    ) -> StoreFuture<'a, Version> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.save(id, data, expected)
    }
    fn delete(&self, id: SessionId, expected: Option<Version>) -> StoreFuture<'_, bool> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(id, expected)
    }
    fn touch(&self, id: SessionId, idle: Duration) -> StoreFuture<'_, bool> {
        self.touches.fetch_add(1, Ordering::SeqCst);
        self.inner.touch(id, idle)
    }
}

fn fail(e: SessionError) -> (StatusCode, String) {
    use foresight_core::HttpError;
    (e.status(), e.to_string())
}

async fn read(Extension(s): Extension<Session>) -> Result<String, (StatusCode, String)> {
    let n: u64 = s.get("n").await.map_err(fail)?.unwrap_or(0);
    Ok(n.to_string())
}

async fn incr(Extension(s): Extension<Session>) -> Result<String, (StatusCode, String)> {
    let n: u64 = s.get("n").await.map_err(fail)?.unwrap_or(0);
    s.insert("n", &(n + 1)).await.map_err(fail)?;
    Ok((n + 1).to_string())
}

fn app(layer: SessionMirrorLayer, calls: Arc<AtomicUsize>) -> Router {
    let counted = move || {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            "handler"
        }
    };
    Router::new()
        .route("/read", get(read))
        .route("/incr", get(incr))
        .route("/plain", get(|| async { "plain" }))
        .route("/counted", get(counted))
        .route(
            "/login",
            get(|Extension(s): Extension<Session>| async move {
                s.insert("user", "alice").await.map_err(fail)?;
                s.rotate_id().await.map_err(fail)?;
                Ok::<_, (StatusCode, String)>("in")
            }),
        )
        .route(
            "/logout",
            get(|Extension(s): Extension<Session>| async move {
                s.destroy().await.map_err(fail)?;
                Ok::<_, (StatusCode, String)>("out")
            }),
        )
        .route(
            "/big",
            get(|Extension(s): Extension<Session>| async move {
                s.insert("blob", &"x".repeat(100 * 1024))
                    .await
                    .map_err(fail)?;
                Ok::<_, (StatusCode, String)>("stored")
            }),
        )
        .layer(layer)
}

fn request(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(path);
    if let Some(cookie) = cookie {
        builder = builder.header(COOKIE, cookie);
    }
    builder.body(Body::empty()).unwrap()
}

fn shadow(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut req = request(path, cookie);
    req.headers_mut().insert(
        foresight_core::ROLE_HEADER.clone(),
        "shadow".parse().unwrap(),
    );
    req
}

async fn text<B: http_body::Body>(response: Response<B>) -> String
where
    B::Error: std::fmt::Debug,
{
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// `__Host-session=<id>` from a response's set-cookie.
fn cookie_of<B>(response: &Response<B>) -> Option<String> {
    let value = response.headers().get(SET_COOKIE)?.to_str().ok()?;
    Some(value.split(';').next()?.to_owned())
}

fn id_of(cookie: &str) -> SessionId {
    cookie.split_once('=').unwrap().1.parse().unwrap()
}

#[tokio::test]
async fn requests_that_do_not_touch_the_session_cost_nothing() {
    let store = Counting::default();
    let app = app(SessionMirrorLayer::new(store.clone()), Arc::default());
    let id = SessionId::random();
    let response = app
        .oneshot(request("/plain", Some(&format!("__Host-session={id}"))))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(SET_COOKIE).is_none());
    assert_eq!(store.loads.load(Ordering::SeqCst), 0);
    assert_eq!(store.writes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_session_is_created_on_first_write_and_read_back() {
    let store = Counting::default();
    let app = app(SessionMirrorLayer::new(store.clone()), Arc::default());
    let response = app.clone().oneshot(request("/incr", None)).await.unwrap();
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        set_cookie.ends_with("; Path=/; Secure; HttpOnly; SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = cookie_of(&response).unwrap();
    assert_eq!(text(response).await, "1");

    let response = app
        .clone()
        .oneshot(request("/incr", Some(&cookie)))
        .await
        .unwrap();
    assert!(response.headers().get(SET_COOKIE).is_none(), "same id kept");
    assert_eq!(text(response).await, "2");
    // Reading does not write.
    let writes = store.writes.load(Ordering::SeqCst);
    let response = app.oneshot(request("/read", Some(&cookie))).await.unwrap();
    assert_eq!(text(response).await, "2");
    assert_eq!(store.writes.load(Ordering::SeqCst), writes);
}

#[tokio::test]
async fn an_id_the_server_did_not_issue_is_never_adopted() {
    let store = MemoryStore::new();
    let app = app(SessionMirrorLayer::new(store.clone()), Arc::default());
    let chosen = SessionId::random();
    let response = app
        .oneshot(request("/incr", Some(&format!("__Host-session={chosen}"))))
        .await
        .unwrap();
    let issued = id_of(&cookie_of(&response).unwrap());
    assert_ne!(issued, chosen);
    assert!(store.load(chosen).await.unwrap().is_none());
    assert!(store.load(issued).await.unwrap().is_some());
}

#[tokio::test]
async fn concurrent_writers_one_wins_the_other_gets_409() {
    let store = MemoryStore::new();
    let barrier = Arc::new(Barrier::new(2));
    let handler = {
        let barrier = barrier.clone();
        move |Extension(s): Extension<Session>| {
            let barrier = barrier.clone();
            async move {
                let n: u64 = s.get("n").await.map_err(fail)?.unwrap_or(0);
                barrier.wait().await; // both have read the same version
                s.insert("n", &(n + 1)).await.map_err(fail)?;
                Ok::<_, (StatusCode, String)>("ok")
            }
        }
    };
    let app = Router::new()
        .route("/race", get(handler))
        .layer(SessionMirrorLayer::new(store.clone()));
    let mut data = SessionData::new();
    data.insert("n", &0).unwrap();
    let id = store.create(&data, Expiry::default()).await.unwrap();
    let cookie = format!("__Host-session={id}");
    let (a, b) = tokio::join!(
        app.clone().oneshot(request("/race", Some(&cookie))),
        app.clone().oneshot(request("/race", Some(&cookie)))
    );
    let mut statuses = [a.unwrap().status(), b.unwrap().status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    let stored = store.load(id).await.unwrap().unwrap();
    assert_eq!(stored.value.get::<u64>("n").unwrap(), Some(1));
}

#[tokio::test]
async fn disjoint_changes_merge_with_a_policy() {
    let store = MemoryStore::new();
    let barrier = Arc::new(Barrier::new(2));
    let handler = {
        let barrier = barrier.clone();
        move |Extension(s): Extension<Session>, req: Request<Body>| {
            let barrier = barrier.clone();
            async move {
                let key = req.uri().query().unwrap_or("k").to_owned();
                let _: Option<u64> = s.get(&key).await.map_err(fail)?;
                barrier.wait().await;
                s.insert(&key, &1).await.map_err(fail)?;
                Ok::<_, (StatusCode, String)>("ok")
            }
        }
    };
    let app = Router::new()
        .route("/set", get(handler))
        .layer(SessionMirrorLayer::new(store.clone()).with_merge_policy(DisjointKeys));
    let id = store
        .create(&SessionData::new(), Expiry::default())
        .await
        .unwrap();
    let cookie = format!("__Host-session={id}");
    let (a, b) = tokio::join!(
        app.clone().oneshot(request("/set?a", Some(&cookie))),
        app.clone().oneshot(request("/set?b", Some(&cookie)))
    );
    assert_eq!(a.unwrap().status(), StatusCode::OK);
    assert_eq!(b.unwrap().status(), StatusCode::OK);
    let stored = store.load(id).await.unwrap().unwrap();
    assert_eq!(stored.value.get::<u64>("a").unwrap(), Some(1));
    assert_eq!(stored.value.get::<u64>("b").unwrap(), Some(1));
    assert_eq!(stored.version, Version::new(3));
}

#[tokio::test]
async fn rotate_id_kills_the_old_id() {
    let store = MemoryStore::new();
    let app = app(SessionMirrorLayer::new(store.clone()), Arc::default());
    let response = app.clone().oneshot(request("/incr", None)).await.unwrap();
    let old = cookie_of(&response).unwrap();
    let response = app
        .clone()
        .oneshot(request("/login", Some(&old)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let new = cookie_of(&response).unwrap();
    assert_ne!(old, new);
    assert!(
        store.load(id_of(&old)).await.unwrap().is_none(),
        "old id dead"
    );
    let moved = store.load(id_of(&new)).await.unwrap().unwrap();
    assert_eq!(
        moved.value.get::<String>("user").unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(moved.value.get::<u64>("n").unwrap(), Some(1));
}

#[tokio::test]
async fn destroy_deletes_and_clears_the_cookie() {
    let store = MemoryStore::new();
    let app = app(SessionMirrorLayer::new(store.clone()), Arc::default());
    let response = app.clone().oneshot(request("/incr", None)).await.unwrap();
    let cookie = cookie_of(&response).unwrap();
    let response = app
        .oneshot(request("/logout", Some(&cookie)))
        .await
        .unwrap();
    let cleared = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("__Host-session=; Max-Age=0"),
        "{cleared}"
    );
    assert!(store.load(id_of(&cookie)).await.unwrap().is_none());
}

#[tokio::test]
async fn shadow_requests_warm_and_skip_the_handler() {
    let store = Counting::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(SessionMirrorLayer::new(store.clone()), calls.clone());
    let response = app.clone().oneshot(request("/incr", None)).await.unwrap();
    let cookie = cookie_of(&response).unwrap();
    let writes = store.writes.load(Ordering::SeqCst);

    let response = app
        .clone()
        .oneshot(shadow("/counted", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "handler skipped");
    assert_eq!(store.touches.load(Ordering::SeqCst), 1, "ttl touched");
    assert_eq!(
        store.writes.load(Ordering::SeqCst),
        writes,
        "nothing written"
    );

    // A shadow of a write does not apply it twice.
    let response = app
        .clone()
        .oneshot(shadow("/incr", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app
        .clone()
        .oneshot(request("/read", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(text(response).await, "1");

    let malformed = app
        .clone()
        .oneshot(shadow("/counted", Some("__Host-session=zz")))
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let unknown = format!("__Host-session={}", SessionId::random());
    let unknown = app
        .oneshot(shadow("/counted", Some(&unknown)))
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn shadow_handler_can_run_without_saving() {
    let store = MemoryStore::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = SessionMirrorLayer::new(store.clone()).with_shadow_handler(true);
    let app = app(layer, calls.clone());
    let response = app.clone().oneshot(request("/incr", None)).await.unwrap();
    let cookie = cookie_of(&response).unwrap();
    let response = app
        .clone()
        .oneshot(shadow("/incr", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let stored = store.load(id_of(&cookie)).await.unwrap().unwrap();
    assert_eq!(
        stored.value.get::<u64>("n").unwrap(),
        Some(1),
        "not applied twice"
    );
}

#[tokio::test]
async fn oversize_session_is_413() {
    let app = app(SessionMirrorLayer::new(MemoryStore::new()), Arc::default());
    let response = app.oneshot(request("/big", None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.headers().get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn header_carrier() {
    let name = http::HeaderName::from_static("x-session");
    let app = app(
        SessionMirrorLayer::new(MemoryStore::new()).with_header(name.clone()),
        Arc::default(),
    );
    let response = app.clone().oneshot(request("/incr", None)).await.unwrap();
    let id = response.headers()[&name].to_str().unwrap().to_owned();
    let mut req = request("/incr", None);
    req.headers_mut().insert(name, id.parse().unwrap());
    assert_eq!(text(app.oneshot(req).await.unwrap()).await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_is_503_with_retry_after_then_recovers() {
    let mut server = foresight_testkit::RedisServer::builder()
        .persistent()
        .start();
    let store = foresight_store::RedisStore::standalone(&server.url())
        .unwrap()
        .with_op_timeout(Duration::from_millis(500));
    let app = app(SessionMirrorLayer::new(store), Arc::default());
    let response = app.clone().oneshot(request("/incr", None)).await.unwrap();
    let cookie = cookie_of(&response).unwrap();

    server.kill();
    let response = app
        .clone()
        .oneshot(request("/incr", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[RETRY_AFTER], "1");
    // Even if the handler swallowed the error, the response says so.
    let swallow = Router::new()
        .route(
            "/",
            get(|Extension(s): Extension<Session>| async move {
                let _ = s.get::<u64>("n").await;
                "fine"
            }),
        )
        .layer(SessionMirrorLayer::new(
            foresight_store::RedisStore::standalone(&server.url()).unwrap(),
        ));
    let response = swallow.oneshot(request("/", Some(&cookie))).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    let server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    let mut last = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..100 {
        let response = app
            .clone()
            .oneshot(request("/incr", Some(&cookie)))
            .await
            .unwrap();
        last = response.status();
        if last == StatusCode::OK {
            assert_eq!(text(response).await, "2");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last, StatusCode::OK);
    drop(server);
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn axum_extractor_and_error_responses() {
    async fn handler(session: Session) -> Result<String, SessionError> {
        session.insert("blob", &"x".repeat(100 * 1024)).await?;
        Ok("stored".to_owned())
    }
    let app = Router::new()
        .route("/", get(handler))
        .layer(SessionMirrorLayer::new(MemoryStore::new()));
    let response = app.oneshot(request("/", None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let bare = Router::new().route("/", get(handler));
    let response = bare.oneshot(request("/", None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test(start_paused = true)]
async fn reads_restart_the_idle_timeout_at_most_once_per_interval() {
    let idle = Duration::from_secs(60);
    for read_touch in [Some(Duration::from_secs(10)), None] {
        let store = Counting::default();
        let layer = SessionMirrorLayer::new(store.clone())
            .with_idle_timeout(idle)
            .with_read_touch(read_touch);
        let app = app(layer, Arc::default());
        let response = app.clone().oneshot(request("/incr", None)).await.unwrap();
        let cookie = cookie_of(&response).unwrap();
        // Read every 20 s for two minutes: twice the idle timeout.
        for _ in 0..6 {
            tokio::time::advance(Duration::from_secs(20)).await;
            let _ = app
                .clone()
                .oneshot(request("/read", Some(&cookie)))
                .await
                .unwrap();
        }
        let alive = store.inner.load(id_of(&cookie)).await.unwrap().is_some();
        match read_touch {
            Some(_) => {
                assert!(alive, "reads kept the session alive");
                assert_eq!(store.touches.load(Ordering::SeqCst), 6);
                // Reads within the interval do not touch again.
                let _ = app
                    .clone()
                    .oneshot(request("/read", Some(&cookie)))
                    .await
                    .unwrap();
                assert_eq!(store.touches.load(Ordering::SeqCst), 6);
            }
            None => assert!(!alive, "without read touches the session expired"),
        }
    }
}

/// Saves `change` applied to the stored session, as another writer would
/// between a handler's load and its save.
async fn write_behind(
    store: &MemoryStore,
    session: &Session,
    change: impl FnOnce(&mut SessionData),
) {
    let id = session.id().await.unwrap().unwrap();
    let current = store.load(id).await.unwrap().unwrap();
    let mut data = current.value.clone();
    change(&mut data);
    store.save(id, &data, current.version).await.unwrap();
}

/// A session holding `n = 0`, and its cookie.
async fn session_with_zero(store: &MemoryStore) -> (SessionId, String) {
    let mut data = SessionData::new();
    data.insert("n", &0).unwrap();
    let id = store.create(&data, Expiry::default()).await.unwrap();
    (id, format!("__Host-session={id}"))
}

#[tokio::test]
async fn a_replayed_blind_write_already_applied_is_not_a_conflict() {
    let store = MemoryStore::new();
    let (id, cookie) = session_with_zero(&store).await;
    // The handler sets n = 7 without reading; before it returns, the same
    // write lands in the store by another path (a dead primary's first
    // attempt), so the save's compare-and-set finds a newer version holding
    // exactly the same data.
    let behind = store.clone();
    let blind = move |Extension(s): Extension<Session>| {
        let behind = behind.clone();
        async move {
            s.insert("n", &7).await.map_err(fail)?;
            write_behind(&behind, &s, |d| {
                d.insert("n", &7).unwrap();
            })
            .await;
            Ok::<_, (StatusCode, String)>("set")
        }
    };
    // The same after reading the value: a read-modify-write that may rest on
    // a stale read stays a conflict even when the data match.
    let behind = store.clone();
    let after_read = move |Extension(s): Extension<Session>| {
        let behind = behind.clone();
        async move {
            let _: Option<u64> = s.get("n").await.map_err(fail)?;
            s.insert("n", &7).await.map_err(fail)?;
            write_behind(&behind, &s, |d| {
                d.insert("n", &7).unwrap();
            })
            .await;
            Ok::<_, (StatusCode, String)>("set")
        }
    };
    let app = Router::new()
        .route("/blind", get(blind))
        .route("/after-read", get(after_read))
        .layer(SessionMirrorLayer::new(store.clone()));
    let response = app
        .clone()
        .oneshot(request("/blind", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .oneshot(request("/after-read", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let stored = store.load(id).await.unwrap().unwrap();
    assert_eq!(stored.value.get::<u64>("n").unwrap(), Some(7));
}

#[tokio::test]
async fn a_blind_write_that_loses_its_compare_and_set_is_reapplied() {
    let store = MemoryStore::new();
    let (id, cookie) = session_with_zero(&store).await;
    // Between the handler's load and its save, another writer changes the
    // session (n = 1, theme = dark): the blind write of n = 7 is applied
    // over that newer version rather than refused, and keeps its theme.
    let behind = store.clone();
    let blind = move |Extension(s): Extension<Session>| {
        let behind = behind.clone();
        async move {
            s.insert("n", &7).await.map_err(fail)?;
            write_behind(&behind, &s, |d| {
                d.insert("n", &1).unwrap();
                d.insert("theme", "dark").unwrap();
            })
            .await;
            Ok::<_, (StatusCode, String)>("set")
        }
    };
    let app = Router::new()
        .route("/blind", get(blind))
        .layer(SessionMirrorLayer::new(store.clone()));
    let response = app.oneshot(request("/blind", Some(&cookie))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let stored = store.load(id).await.unwrap().unwrap();
    assert_eq!(stored.value.get::<u64>("n").unwrap(), Some(7));
    assert_eq!(
        stored.value.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );
}
