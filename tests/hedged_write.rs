//! A hedged blind write over the network: its slow first attempt finishes
//! on its instance after the hedge answered and after the client's next
//! write, and never undoes that next write.
//!
//! Two instances run as OS processes (this test binary run again as
//! [`instance_process`]), each SessionMirrorLayer over a RedisStore on one
//! spawned `redis-server`, and each finishing every request it has begun
//! even when the caller goes away (the work runs on a task of its own), as
//! many application servers do. `PUT /cart/{item}` sets the cart without
//! reading it (a blind write); a first attempt of `PUT /cart/slow-…` holds
//! its answer, and so its write-through, for three seconds. In this
//! process, ShardLayer → HealthFailoverLayer (hedging after 20 ms) → Pool of
//! `Forward` routes by the `x-user` header.
//!
//! The client writes `slow-apple`; the hedge answers it from the other
//! instance; the client writes `pear` at once; then the slow first attempt
//! finishes. The cart must stay `pear`. The same run with instances that
//! ignore attempt tags shows what the fence prevents: the late write lands.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Path, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, put};
use bytes::Bytes;
use foresight::core::attempt::Attempt;
use foresight::failover::Hedging;
use foresight::forward::{Forward, Upstream, http_client};
use foresight::prelude::*;
use foresight_store::RedisStore;
use foresight_testkit::RedisServer;
use foresight_testkit::http::serve_gateway;
use foresight_testkit::process::{self, InstanceProcess};
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use tower::ServiceBuilder;

const USER_HEADER: &str = "x-user";
const REDIS_URL_ENV: &str = "FORESIGHT_HEDGED_REDIS_URL";
/// `1`: the instance drops attempt tags before SessionMirrorLayer sees them.
const UNTAGGED_ENV: &str = "FORESIGHT_HEDGED_UNTAGGED";
const SLOW: Duration = Duration::from_secs(3);

/// Slow first attempts that have finished, in this instance.
static SLOW_DONE: AtomicUsize = AtomicUsize::new(0);

/// Whether this request is a first attempt (the gateway tags every one).
#[derive(Clone, Copy)]
struct FirstAttempt(bool);

async fn set_cart(
    Extension(session): Extension<Session>,
    Extension(FirstAttempt(first)): Extension<FirstAttempt>,
    Path(item): Path<String>,
) -> StatusCode {
    if session.insert("cart", &item).await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if first && item.starts_with("slow") {
        tokio::time::sleep(SLOW).await;
    }
    StatusCode::OK
}

async fn cart(Extension(session): Extension<Session>) -> String {
    session
        .get::<String>("cart")
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Runs the rest of the request on a task of its own, so that it finishes
/// when the caller hangs up; notes the attempt, drops its tag when told
/// to, and counts slow first attempts once their session is written.
async fn finish_what_was_begun(mut request: Request, next: Next) -> Response {
    let first = Attempt::of_headers(request.headers()).is_some_and(|a| a.number() == 0);
    let slow = first && request.uri().path().starts_with("/cart/slow");
    request.extensions_mut().insert(FirstAttempt(first));
    if std::env::var(UNTAGGED_ENV).is_ok_and(|v| v == "1") {
        Attempt::strip(request.headers_mut());
    }
    tokio::spawn(async move {
        let response = next.run(request).await;
        if slow {
            SLOW_DONE.fetch_add(1, Ordering::SeqCst);
        }
        response
    })
    .await
    .expect("the request task")
}

/// The instance server, when this binary runs as an instance process; a
/// no-op in a normal test run.
#[test]
fn instance_process() {
    if process::instance_name().is_none() {
        return;
    }
    let url = std::env::var(REDIS_URL_ENV).expect("the Redis URL of the instance");
    process::serve_axum_instance(async move || {
        let store = RedisStore::standalone(&url).unwrap();
        let sessions = Router::new()
            .route("/cart/{item}", put(set_cart))
            .route("/cart", get(cart))
            .layer(SessionMirrorLayer::new(store).with_secure(false))
            .layer(middleware::from_fn(finish_what_was_begun));
        Router::new()
            .route(
                "/slow-done",
                get(|| async { SLOW_DONE.load(Ordering::SeqCst).to_string() }),
            )
            .merge(sessions)
    });
}

/// What the cart holds after the hedged slow write, the next write, and
/// the slow attempt's late end.
async fn cart_after_a_late_first_attempt(untagged: bool) -> String {
    let flag = if untagged { "1" } else { "0" };
    let (_redis, instances) = tokio::task::spawn_blocking(move || {
        let redis = RedisServer::start();
        let url = redis.url();
        let env = [(REDIS_URL_ENV, url.as_str()), (UNTAGGED_ENV, flag)];
        let instances: Vec<_> = ["alpha", "beta"]
            .into_iter()
            .map(|name| InstanceProcess::spawn("instance_process", name, &env))
            .collect();
        (redis, instances)
    })
    .await
    .unwrap();
    let topology = process::topology(&instances);
    let upstream = Upstream::http();
    let failover = HealthFailoverLayer::new(topology.clone()).with_hedging(
        Hedging::after_quantile(0.5)
            .with_min_delay(Duration::from_millis(20))
            .with_min_samples(5),
    );
    let gateway = serve_gateway(
        ServiceBuilder::new()
            .layer(foresight::edge())
            .layer(ShardLayer::new(
                topology.clone(),
                HeaderKey::new(USER_HEADER),
            ))
            .layer(failover.clone())
            .service(Pool::new(topology.clone(), move |i| {
                Forward::<RouteBody>::new(&upstream, i)
            })),
    )
    .await;
    let web = http_client::<Empty<Bytes>>();
    let send = async |method: http::Method, path: &str, cookie: &str| {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://{gateway}{path}"))
            .header(USER_HEADER, "ann")
            .header("cookie", cookie)
            .body(Empty::new())
            .unwrap();
        let response = web.request(request).await.expect("a response");
        let status = response.status();
        let cookie = response
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, cookie, String::from_utf8(body.to_vec()).unwrap())
    };

    // A session, and enough answers for the hedging delay to be known.
    let (status, cookie, _) = send(http::Method::PUT, "/cart/empty", "").await;
    assert_eq!(status, StatusCode::OK);
    let cookie = cookie.expect("a session cookie");
    for _ in 0..20 {
        let (status, _, _) = send(http::Method::GET, "/cart", &cookie).await;
        assert_eq!(status, StatusCode::OK);
    }
    let hedges_before = failover.stats().hedges;

    let (status, _, _) = send(http::Method::PUT, "/cart/slow-apple", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        failover.stats().hedges,
        hedges_before + 1,
        "the slow write was answered without a hedge"
    );
    let (status, _, _) = send(http::Method::PUT, "/cart/pear", &cookie).await;
    assert_eq!(status, StatusCode::OK);

    // Wait for the slow first attempt to end on its instance.
    let direct = http_client::<Empty<Bytes>>();
    let mut done = 0;
    for _ in 0..400 {
        done = 0;
        for instance in &instances {
            let uri = format!("http://{}/slow-done", instance.addr);
            let response = direct.get(uri.parse().unwrap()).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            done += std::str::from_utf8(&body)
                .unwrap()
                .parse::<usize>()
                .unwrap();
        }
        if done > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done, 1, "the slow first attempt never finished");
    let (status, _, body) = send(http::Method::GET, "/cart", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hedged_writes_late_first_attempt_never_undoes_the_next_write() {
    assert_eq!(cart_after_a_late_first_attempt(false).await, "pear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_attempt_tags_the_late_first_attempt_lands_last() {
    // What the fence prevents, and proof that the run above really has the
    // slow attempt finish last.
    assert_eq!(cart_after_a_late_first_attempt(true).await, "slow-apple");
}
