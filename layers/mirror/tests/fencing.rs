//! Late attempts are fenced: a slow attempt of a request that another
//! attempt (a hedge, a replay) already applied never lays its write over
//! the client's next request, and never applies the request twice.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Path};
use axum::routing::post;
use foresight_core::attempt::{ATTEMPT_HEADER, Attempt};
use foresight_mirror::{Session, SessionMirrorLayer};
use foresight_store::{MemoryStore, SessionId, SessionStore};
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, StatusCode};
use tokio::sync::Notify;
use tower::ServiceExt;

/// `POST /cart/{item}` sets the cart without reading it (a blind write);
/// `POST /slow-cart/{item}` too, and holds until the gate opens. `POST /count`
/// increments a counter (a write that reads first).
fn app(store: MemoryStore, gate: Arc<Notify>) -> Router {
    Router::new()
        .route(
            "/cart/{item}",
            post(
                |Extension(session): Extension<Session>, Path(item): Path<String>| async move {
                    session.insert("cart", &item).await.unwrap();
                    "ok"
                },
            ),
        )
        .route(
            "/slow-cart/{item}",
            post(
                move |Extension(session): Extension<Session>, Path(item): Path<String>| async move {
                    session.insert("cart", &item).await.unwrap();
                    gate.notified().await;
                    "ok"
                },
            ),
        )
        .route(
            "/count",
            post(|Extension(session): Extension<Session>| async move {
                let n: u64 = session.get("n").await.unwrap().unwrap_or(0);
                session.insert("n", &(n + 1)).await.unwrap();
                "ok"
            }),
        )
        .layer(SessionMirrorLayer::new(store).with_secure(false))
}

fn request(uri: &str, cookie: Option<&str>, attempt: Option<Attempt>) -> Request<Body> {
    let mut builder = Request::post(uri);
    if let Some(cookie) = cookie {
        builder = builder.header(COOKIE, cookie);
    }
    if let Some(attempt) = attempt {
        builder = builder.header(&ATTEMPT_HEADER, attempt.header_value());
    }
    builder.body(Body::empty()).unwrap()
}

/// A session with a cart: its cookie and id.
async fn session(app: &Router) -> (String, SessionId) {
    let response = app
        .clone()
        .oneshot(request("/cart/empty", None, None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let id = cookie.split_once('=').unwrap().1.parse().unwrap();
    (cookie, id)
}

/// The slow first attempt of request 1 finishes after its hedge answered
/// and after the client's next request: the cart the client saw last.
async fn slow_attempt_then_next_write(tagged: bool) -> String {
    let store = MemoryStore::new();
    let gate = Arc::new(Notify::new());
    let app = app(store.clone(), gate.clone());
    let (cookie, id) = session(&app).await;
    let first = Attempt::first(1);
    let tag = |a: Attempt| tagged.then_some(a);

    let slow = tokio::spawn(app.clone().oneshot(request(
        "/slow-cart/apple",
        Some(&cookie),
        tag(first),
    )));
    tokio::task::yield_now().await;
    let hedge = app
        .clone()
        .oneshot(request("/cart/apple", Some(&cookie), tag(first.next())))
        .await
        .unwrap();
    assert_eq!(hedge.status(), StatusCode::OK);
    // The client has its answer and moves on.
    let next = app
        .clone()
        .oneshot(request("/cart/pear", Some(&cookie), tag(Attempt::first(2))))
        .await
        .unwrap();
    assert_eq!(next.status(), StatusCode::OK);
    gate.notify_one();
    let late = slow.await.unwrap().unwrap();
    assert_eq!(late.status(), StatusCode::OK, "a fenced write is no error");
    let stored = store.load(id).await.unwrap().unwrap();
    stored.value.get::<String>("cart").unwrap().unwrap()
}

#[tokio::test]
async fn a_hedge_losers_blind_write_never_undoes_the_next_request() {
    assert_eq!(slow_attempt_then_next_write(true).await, "pear");
}

#[tokio::test]
async fn without_attempt_tags_the_late_write_is_reapplied_over_the_next() {
    // What the fence prevents: untagged requests keep the blind-write
    // policy (reapply), so the slow copy lands last.
    assert_eq!(slow_attempt_then_next_write(false).await, "apple");
}

#[tokio::test]
async fn a_second_attempt_that_loads_after_the_first_wrote_does_not_apply_it_again() {
    let store = MemoryStore::new();
    let app = app(store.clone(), Arc::new(Notify::new()));
    let (cookie, id) = session(&app).await;
    let attempt = Attempt::first(7);
    for a in [attempt, attempt.next(), attempt.next().next()] {
        let response = app
            .clone()
            .oneshot(request("/count", Some(&cookie), Some(a)))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = app
        .clone()
        .oneshot(request("/count", Some(&cookie), Some(Attempt::first(8))))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let stored = store.load(id).await.unwrap().unwrap();
    assert_eq!(
        stored.value.get::<u64>("n").unwrap(),
        Some(2),
        "request 7 once, request 8 once"
    );
}

#[tokio::test]
async fn handlers_never_see_the_record_of_attempts() {
    let store = MemoryStore::new();
    let app = Router::new()
        .route(
            "/keys",
            post(|Extension(session): Extension<Session>| async move {
                let data = session.data().await.unwrap();
                session.insert("seen", &data.len()).await.unwrap();
                data.iter()
                    .map(|(k, _)| k.clone())
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        )
        .layer(SessionMirrorLayer::new(store.clone()).with_secure(false));
    let first = app
        .clone()
        .oneshot(request("/keys", None, Some(Attempt::first(1))))
        .await
        .unwrap();
    let cookie = first.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let second = app
        .oneshot(request("/keys", Some(&cookie), Some(Attempt::first(2))))
        .await
        .unwrap();
    let body = axum::body::to_bytes(second.into_body(), 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"seen");
}
