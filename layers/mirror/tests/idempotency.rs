//! Idempotency keys: a retried request with the same `Idempotency-Key` is
//! answered from the stored answer and its handler runs once, whatever
//! the retries, hedges and concurrent copies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::Extension;
use axum::routing::post;
use foresight_core::attempt::{ATTEMPT_HEADER, Attempt};
use foresight_mirror::idempotency::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
use foresight_mirror::{Session, SessionMirrorLayer};
use foresight_store::MemoryStore;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, Response, StatusCode};
use tokio::sync::Notify;
use tower::ServiceExt;

struct Shop {
    app: Router,
    runs: Arc<AtomicUsize>,
    gate: Arc<Notify>,
}

/// `POST /orders` places an order (counts its runs, numbers the order in
/// the session, answers 201 with the number); `POST /slow-orders` too,
/// after the gate opens; `POST /login` makes a session.
fn open_shop(layer: SessionMirrorLayer) -> Shop {
    let runs = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Notify::new());
    let order = |runs: Arc<AtomicUsize>, gate: Option<Arc<Notify>>| {
        move |Extension(session): Extension<Session>| async move {
            runs.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = gate {
                gate.notified().await;
            }
            let n: u64 = session.get("orders").await.unwrap().unwrap_or(0) + 1;
            session.insert("orders", &n).await.unwrap();
            (
                StatusCode::CREATED,
                [(http::header::CONTENT_TYPE, "application/json")],
                format!("{{\"order\":{n}}}"),
            )
        }
    };
    let app = Router::new()
        .route("/orders", post(order(runs.clone(), None)))
        .route(
            "/slow-orders",
            post(order(runs.clone(), Some(gate.clone()))),
        )
        .route(
            "/login",
            post(|Extension(session): Extension<Session>| async move {
                session.insert("user", "ada").await.unwrap();
                "in"
            }),
        )
        .layer(layer.with_secure(false));
    Shop { app, runs, gate }
}

fn request(path: &str, cookie: &str, key: Option<&str>, attempt: Option<Attempt>) -> Request<Body> {
    let mut builder = Request::post(path).header(COOKIE, cookie);
    if let Some(key) = key {
        builder = builder.header(&IDEMPOTENCY_KEY, key);
    }
    if let Some(attempt) = attempt {
        builder = builder.header(&ATTEMPT_HEADER, attempt.header_value());
    }
    builder.body(Body::empty()).unwrap()
}

async fn login(app: &Router) -> String {
    let response = app
        .clone()
        .oneshot(Request::post("/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

async fn text(response: Response<Body>) -> (StatusCode, Option<String>, String) {
    let status = response.status();
    let replayed = response
        .headers()
        .get(&IDEMPOTENT_REPLAYED)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, replayed, String::from_utf8(body.to_vec()).unwrap())
}

fn default_shop() -> Shop {
    open_shop(SessionMirrorLayer::new(MemoryStore::new()))
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_first_answer_and_runs_nothing() {
    let shop = default_shop();
    let cookie = login(&shop.app).await;
    let send = || {
        shop.app
            .clone()
            .oneshot(request("/orders", &cookie, Some("order-a"), None))
    };
    let first = text(send().await.unwrap()).await;
    assert_eq!(first, (StatusCode::CREATED, None, "{\"order\":1}".into()));
    for _ in 0..3 {
        let again = text(send().await.unwrap()).await;
        assert_eq!(
            again,
            (
                StatusCode::CREATED,
                Some("true".into()),
                "{\"order\":1}".into()
            )
        );
    }
    assert_eq!(shop.runs.load(Ordering::SeqCst), 1);
    // Another key is another request.
    let other = shop
        .app
        .clone()
        .oneshot(request("/orders", &cookie, Some("order-b"), None))
        .await
        .unwrap();
    assert_eq!(text(other).await.2, "{\"order\":2}");
    assert_eq!(shop.runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_a_422() {
    let shop = default_shop();
    let cookie = login(&shop.app).await;
    let ok = shop
        .app
        .clone()
        .oneshot(request("/orders", &cookie, Some("k"), None))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
    let reused = shop
        .app
        .clone()
        .oneshot(request("/slow-orders", &cookie, Some("k"), None))
        .await
        .unwrap();
    let (status, _, body) = text(reused).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("this idempotency key was used for a different request"),
        "{body}"
    );
    assert_eq!(shop.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_concurrent_copy_from_another_request_is_a_409_then_the_answer_replays() {
    let shop = default_shop();
    let cookie = login(&shop.app).await;
    let slow = tokio::spawn(shop.app.clone().oneshot(request(
        "/slow-orders",
        &cookie,
        Some("k"),
        None,
    )));
    while shop.runs.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let copy = shop
        .app
        .clone()
        .oneshot(request("/slow-orders", &cookie, Some("k"), None));
    let copy = tokio::time::timeout(std::time::Duration::from_secs(10), copy)
        .await
        .expect("the copy is refused at once, not run")
        .unwrap();
    let (status, _, body) = text(copy).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body.contains("a request with this idempotency key is in progress"),
        "{body}"
    );
    shop.gate.notify_one();
    assert_eq!(text(slow.await.unwrap().unwrap()).await.2, "{\"order\":1}");
    let later = shop
        .app
        .clone()
        .oneshot(request("/slow-orders", &cookie, Some("k"), None));
    let later = tokio::time::timeout(std::time::Duration::from_secs(10), later)
        .await
        .expect("replayed at once, not run again")
        .unwrap();
    assert_eq!(
        text(later).await,
        (
            StatusCode::CREATED,
            Some("true".into()),
            "{\"order\":1}".into()
        )
    );
    assert_eq!(shop.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_hedge_of_the_same_request_waits_for_the_first_attempts_answer() {
    let shop = default_shop();
    let cookie = login(&shop.app).await;
    let first = Attempt::first(42);
    let slow = tokio::spawn(shop.app.clone().oneshot(request(
        "/slow-orders",
        &cookie,
        Some("k"),
        Some(first),
    )));
    while shop.runs.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let hedge = tokio::spawn(shop.app.clone().oneshot(request(
        "/slow-orders",
        &cookie,
        Some("k"),
        Some(first.next()),
    )));
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    assert!(
        !hedge.is_finished(),
        "the hedge waits instead of answering 409"
    );
    shop.gate.notify_one();
    let hedge = tokio::time::timeout(std::time::Duration::from_secs(10), hedge)
        .await
        .expect("the hedge answers once the first attempt did")
        .unwrap()
        .unwrap();
    let (status, replayed, body) = text(hedge).await;
    assert_eq!(
        (status, replayed.as_deref(), body.as_str()),
        (StatusCode::CREATED, Some("true"), "{\"order\":1}")
    );
    assert_eq!(text(slow.await.unwrap().unwrap()).await.2, "{\"order\":1}");
    assert_eq!(shop.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn malformed_keys_are_a_400_and_run_nothing() {
    let shop = default_shop();
    let cookie = login(&shop.app).await;
    let long = "k".repeat(256);
    for key in ["", "two words", long.as_str()] {
        let response = shop
            .app
            .clone()
            .oneshot(request("/orders", &cookie, Some(key), None))
            .await
            .unwrap();
        let (status, _, body) = text(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key:?}");
        assert!(body.contains("malformed idempotency key"), "{body}");
    }
    assert_eq!(shop.runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn without_a_session_or_when_turned_off_keys_are_not_deduplicated() {
    let shop = default_shop();
    for _ in 0..2 {
        let response = shop
            .app
            .clone()
            .oneshot(request("/orders", "", Some("k"), None))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    assert_eq!(
        shop.runs.load(Ordering::SeqCst),
        2,
        "no session: nothing to keep the answer in"
    );

    let off = open_shop(SessionMirrorLayer::new(MemoryStore::new()).with_idempotency_keys(false));
    let cookie = login(&off.app).await;
    for _ in 0..2 {
        off.app
            .clone()
            .oneshot(request("/orders", &cookie, Some("k"), None))
            .await
            .unwrap();
    }
    assert_eq!(off.runs.load(Ordering::SeqCst), 2);
}
