//! The layer over a `tower-test` mock: replay, budget, timeouts, readiness.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use foresight_core::{
    BoxError, ClientKey, HttpError, InstanceSpec, Ranked, Role, Route, RouteBody, Topology,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service as _, ServiceExt};
use tower_test::mock;

use crate::*;

type Body = RouteBody;
type Handle = mock::Handle<Request<Body>, Response<&'static str>>;
type Service = HealthFailover<mock::Mock<Request<Body>, Response<&'static str>>>;

fn topology() -> Topology {
    Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap()
}

fn request(method: Method, body: &'static str, ranked: &[&str]) -> Request<Full<Bytes>> {
    let ranked: Ranked = ranked.iter().map(|&id| id.into()).collect();
    let mut request = Request::builder()
        .method(method)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    request
        .extensions_mut()
        .insert(Route::primary(ClientKey::from("k"), ranked).unwrap());
    request
}

fn get(ranked: &[&str]) -> Request<Full<Bytes>> {
    request(Method::GET, "", ranked)
}

/// The target, the role, and the attempt number of a replay or hedge.
fn target(request: &Request<Body>) -> (String, Role, Option<u16>) {
    let route = request.extensions().get::<Route>().unwrap();
    let replayed = (!route.is_first_attempt()).then_some(route.attempt);
    (route.target.to_string(), route.role, replayed)
}

/// Readies `service` for a request with a `Full` body (the layer takes any
/// body, so the type is named here).
async fn ready<S>(service: &mut S) -> &mut S
where
    S: tower::Service<Request<Full<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    ServiceExt::<Request<Full<Bytes>>>::ready(service)
        .await
        .unwrap()
}

fn setup(layer: &HealthFailoverLayer) -> (Service, Handle) {
    let (mock, handle) = mock::pair();
    (layer.layer(mock), handle)
}

async fn send(
    service: &mut Service,
    request: Request<Full<Bytes>>,
) -> tokio::task::JoinHandle<Result<Response<&'static str>, BoxError>> {
    let future = ready(service).await.call(request);
    tokio::spawn(future)
}

fn failover_error(error: &BoxError) -> &FailoverError {
    error
        .downcast_ref::<FailoverError>()
        .expect("a FailoverError")
}

#[tokio::test]
async fn a_failed_get_is_replayed_on_the_secondary_within_the_request() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    handle.allow(10);
    let task = send(&mut service, get(&["a", "b"])).await;
    let (first, reply) = handle.next_request().await.unwrap();
    assert_eq!(target(&first), ("a".into(), Role::Primary, None));
    reply.send_error("connection refused");
    let (second, reply) = handle.next_request().await.unwrap();
    assert_eq!(target(&second), ("b".into(), Role::Secondary, Some(1)));
    reply.send_response(Response::new("from b"));
    let response = task.await.unwrap().unwrap();
    assert_eq!(*response.body(), "from b");
    assert_eq!(layer.stats().replays, 1);
    assert_eq!(layer.in_flight(&"a".into()), Some(0));
    assert_eq!(layer.in_flight(&"b".into()), Some(0));
}

#[tokio::test]
async fn a_post_without_idempotency_key_is_not_replayed() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    handle.allow(10);
    let task = send(&mut service, request(Method::POST, "x", &["a", "b"])).await;
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_error("reset");
    let error = task.await.unwrap().unwrap_err();
    let error = failover_error(&error);
    assert!(matches!(
        error,
        FailoverError::Failed {
            reason: NoReplay::NotReplayable,
            ..
        }
    ));
    assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(layer.stats().replays, 0);
}

#[tokio::test]
async fn a_post_with_an_idempotency_key_is_replayed_with_its_body() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    handle.allow(10);
    let mut post = request(Method::POST, "payload", &["a", "b"]);
    post.headers_mut()
        .insert("idempotency-key", "k-1".parse().unwrap());
    let task = send(&mut service, post).await;
    let (first, reply) = handle.next_request().await.unwrap();
    // The primary fails before reading the body.
    drop(first);
    reply.send_error("reset");
    let (second, reply) = handle.next_request().await.unwrap();
    assert_eq!(target(&second).0, "b");
    let body = second.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "payload");
    reply.send_response(Response::new("stored"));
    assert_eq!(*task.await.unwrap().unwrap().body(), "stored");
}

#[tokio::test]
async fn a_body_over_the_cap_is_not_replayed_and_is_counted() {
    let layer = HealthFailoverLayer::new(topology()).with_body_cap(4);
    let (mut service, mut handle) = setup(&layer);
    handle.allow(10);
    let task = send(&mut service, request(Method::PUT, "payload", &["a", "b"])).await;
    let (first, reply) = handle.next_request().await.unwrap();
    // The primary still gets the whole body.
    assert_eq!(
        first.into_body().collect().await.unwrap().to_bytes(),
        "payload"
    );
    reply.send_error("reset");
    let error = task.await.unwrap().unwrap_err();
    assert!(matches!(
        failover_error(&error),
        FailoverError::Failed {
            reason: NoReplay::BodyTooLarge,
            ..
        }
    ));
    assert_eq!(layer.stats().body_too_large, 1);
}

#[tokio::test]
async fn a_5xx_is_replayed_and_the_last_one_is_returned() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    handle.allow(10);
    let task = send(&mut service, get(&["a", "b"])).await;
    for _ in 0..2 {
        let (_, reply) = handle.next_request().await.unwrap();
        let mut response = Response::new("busy");
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        reply.send_response(response);
    }
    let response = task.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(layer.stats().replays, 1);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_hangs_times_out_and_is_replayed() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    handle.allow(10);
    let task = send(&mut service, get(&["a", "b"])).await;
    let (_first, hanging) = handle.next_request().await.unwrap();
    // Nothing answers; the adaptive timeout's floor is 100 ms.
    let (second, reply) = handle.next_request().await.unwrap();
    assert_eq!(target(&second).0, "b");
    reply.send_response(Response::new("from b"));
    assert_eq!(*task.await.unwrap().unwrap().body(), "from b");
    assert_eq!(layer.stats().timeouts, 1);
    // The abandoned attempt is no longer in flight.
    assert_eq!(layer.in_flight(&"a".into()), Some(0));
    drop(hanging);
}

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_with_nowhere_to_replay_is_waited_for() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    handle.allow(10);
    let task = send(&mut service, get(&["a", "b"])).await;
    let (first, slow) = handle.next_request().await.unwrap();
    assert_eq!(target(&first).0, "a");
    // While a is slow, b (the only other candidate) goes out of rotation.
    for _ in 0..3 {
        let failing = send(&mut service, get(&["b"])).await;
        let (_, reply) = handle.next_request().await.unwrap();
        reply.send_error("connection refused");
        assert!(failing.await.unwrap().is_err());
    }
    assert_eq!(layer.stats().ejections, 1);
    // Past the attempt timeout there is nowhere to replay: the attempt is
    // not abandoned, and its late answer reaches the client.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!task.is_finished());
    assert_eq!(layer.stats().timeouts, 1);
    slow.send_response(Response::new("slow but fine"));
    assert_eq!(*task.await.unwrap().unwrap().body(), "slow but fine");
    assert_eq!(layer.stats().replays, 0);
}

#[tokio::test(start_paused = true)]
async fn a_non_replayable_attempt_is_never_timed_out_by_the_layer() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    handle.allow(10);
    let task = send(&mut service, request(Method::POST, "", &["a", "b"])).await;
    let (_, reply) = handle.next_request().await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!task.is_finished());
    reply.send_response(Response::new("late but fine"));
    assert_eq!(*task.await.unwrap().unwrap().body(), "late but fine");
    assert_eq!(layer.stats().timeouts, 0);
}

#[tokio::test]
async fn the_budget_stops_replays() {
    let layer =
        HealthFailoverLayer::new(topology()).with_replay_budget(Duration::from_secs(1), 0, 0.0);
    let (mut service, mut handle) = setup(&layer);
    handle.allow(10);
    let task = send(&mut service, get(&["a", "b"])).await;
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_error("refused");
    let error = task.await.unwrap().unwrap_err();
    let error = failover_error(&error);
    assert!(matches!(
        error,
        FailoverError::Failed {
            reason: NoReplay::Budget,
            ..
        }
    ));
    assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(error.retry_after().is_some());
    assert_eq!(layer.stats().budget_denied, 1);
}

#[tokio::test]
async fn the_budget_allows_a_share_of_requests() {
    // No reserve, 50 %: every second request may be replayed.
    let layer = HealthFailoverLayer::new(topology())
        .with_replay_budget(Duration::from_secs(10), 0, 0.5)
        .with_max_ejected_share(0.0)
        .with_consecutive_failures(1000)
        .with_failure_window(Duration::from_secs(1000))
        .with_error_ratio(1.0, Duration::from_secs(10), 1_000_000);
    let (mut service, mut handle) = setup(&layer);
    handle.allow(100);
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        let mut task = send(&mut service, get(&["a", "b"])).await;
        let (_, reply) = handle.next_request().await.unwrap();
        reply.send_error("refused");
        // Either the request fails, or its replay reaches the mock.
        let result = tokio::select! {
            result = &mut task => result.unwrap(),
            next = handle.next_request() => {
                let (_, reply) = next.unwrap();
                reply.send_response(Response::new("b"));
                task.await.unwrap()
            }
        };
        outcomes.push(result.is_ok());
    }
    assert_eq!(outcomes, [false, true, false, true]);
}

#[tokio::test]
async fn an_ejected_primary_is_skipped_without_a_replay() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    handle.allow(100);
    for _ in 0..3 {
        let task = send(&mut service, get(&["a", "b"])).await;
        let (_, reply) = handle.next_request().await.unwrap();
        reply.send_error("refused");
        let (_, reply) = handle.next_request().await.unwrap();
        reply.send_response(Response::new("b"));
        task.await.unwrap().unwrap();
    }
    assert_eq!(layer.stats().ejections, 1);
    let task = send(&mut service, get(&["a", "b"])).await;
    let (first, reply) = handle.next_request().await.unwrap();
    assert_eq!(target(&first), ("b".into(), Role::Secondary, None));
    reply.send_response(Response::new("b"));
    task.await.unwrap().unwrap();
    assert_eq!(layer.stats().replays, 3);
    assert_eq!(layer.stats().rerouted, 1);
}

#[tokio::test]
async fn every_candidate_out_is_answered_503_on_the_first_poll() {
    let layer = HealthFailoverLayer::new(topology())
        .with_max_ejected_share(1.0)
        .with_consecutive_failures(1)
        .with_replay_budget(Duration::from_secs(1), 0, 0.0);
    let (mut service, mut handle) = setup(&layer);
    handle.allow(100);
    for id in ["a", "b"] {
        let task = send(&mut service, get(&[id])).await;
        let (_, reply) = handle.next_request().await.unwrap();
        reply.send_error("refused");
        task.await.unwrap().unwrap_err();
    }
    let mut future = pin!(ready(&mut service).await.call(get(&["a", "b"])));
    let Poll::Ready(Err(error)) = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    else {
        panic!("not answered on the first poll");
    };
    let error = failover_error(&error);
    assert!(matches!(
        error,
        FailoverError::NoLiveInstance { candidates: 2, .. }
    ));
    assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(error.retry_after().is_some());
    assert_eq!(layer.stats().no_live_instance, 1);
}

#[tokio::test]
async fn readiness_is_the_inner_service_readiness() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) =
        mock::spawn_layer::<Request<Body>, Response<&'static str>, _>(layer);
    handle.allow(0);
    assert!(service.poll_ready::<Request<Full<Bytes>>>().is_pending());
    handle.allow(1);
    assert!(service.poll_ready::<Request<Full<Bytes>>>().is_ready());
    let _response = service.call(get(&["a", "b"]));
    // The allowance is spent: not ready again until more is allowed.
    assert!(service.poll_ready::<Request<Full<Bytes>>>().is_pending());
}

#[tokio::test]
async fn dropping_the_response_future_releases_the_attempt() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    handle.allow(10);
    let future = ready(&mut service).await.call(get(&["a", "b"]));
    assert_eq!(layer.in_flight(&"a".into()), Some(1));
    let (_request, _reply) = handle.next_request().await.unwrap();
    drop(future);
    assert_eq!(layer.in_flight(&"a".into()), Some(0));
    // A cancelled attempt is not a failure: nothing was ejected.
    assert_eq!(layer.stats().ejections, 0);
}

#[tokio::test]
async fn a_request_without_a_route_passes_through() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    handle.allow(1);
    let plain = Request::new(Full::new(Bytes::new()));
    let task = tokio::spawn(ready(&mut service).await.call(plain));
    let (request, reply) = handle.next_request().await.unwrap();
    assert!(request.extensions().get::<Route>().is_none());
    reply.send_response(Response::new("ok"));
    task.await.unwrap().unwrap();
}

#[derive(Clone, Debug, PartialEq)]
struct Caller(&'static str);

#[tokio::test]
async fn a_replay_carries_the_whole_head_and_every_extension() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    handle.allow(10);
    let mut request = get(&["a", "b"]);
    *request.uri_mut() = "/profile?tab=2".parse().unwrap();
    request
        .headers_mut()
        .insert("x-trace", "t-1".parse().unwrap());
    request.extensions_mut().insert(Caller("alice"));
    let task = send(&mut service, request).await;
    let (first, reply) = handle.next_request().await.unwrap();
    reply.send_error("connection refused");
    let (second, reply) = handle.next_request().await.unwrap();
    for attempt in [&first, &second] {
        assert_eq!(attempt.uri(), "/profile?tab=2");
        assert_eq!(attempt.method(), Method::GET);
        assert_eq!(attempt.headers()["x-trace"], "t-1");
        assert_eq!(attempt.extensions().get(), Some(&Caller("alice")));
    }
    assert_eq!(target(&second), ("b".into(), Role::Secondary, Some(1)));
    reply.send_response(Response::new("from b"));
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_replay_without_other_extensions_carries_only_its_route() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    handle.allow(10);
    let task = send(&mut service, get(&["a", "b", "c"])).await;
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_error("connection refused");
    let (second, reply) = handle.next_request().await.unwrap();
    // The route alone, which numbers the attempt.
    assert_eq!(second.extensions().len(), 1);
    let route = second.extensions().get::<Route>().unwrap();
    assert_eq!(route.attempt, 1);
    assert_eq!(route.key, ClientKey::from("k"));
    assert_eq!(route.ranked.len(), 3);
    reply.send_error("connection refused");
    let (third, reply) = handle.next_request().await.unwrap();
    assert_eq!(target(&third), ("c".into(), Role::Secondary, Some(2)));
    reply.send_response(Response::new("from c"));
    task.await.unwrap().unwrap();
}

mod hedging;
mod readmission;

#[tokio::test(start_paused = true)]
async fn timeouts_on_a_cold_instance_lengthen_its_timeout_instead_of_ejecting_it() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    handle.allow(100);
    // A burst before `a` has ever answered: every attempt outlives the
    // 100 ms floor and is replayed on `b`.
    let mut tasks = Vec::new();
    for _ in 0..5 {
        tasks.push(send(&mut service, get(&["a", "b"])).await);
    }
    let mut slow = Vec::new();
    for _ in 0..5 {
        let (request, reply) = handle.next_request().await.unwrap();
        assert_eq!(target(&request).0, "a");
        slow.push(reply);
    }
    for _ in 0..5 {
        let (request, reply) = handle.next_request().await.unwrap();
        assert_eq!(target(&request).0, "b");
        reply.send_response(Response::new("from b"));
    }
    for task in tasks {
        assert_eq!(*task.await.unwrap().unwrap().body(), "from b");
    }
    assert_eq!(layer.stats().timeouts, 5);
    assert_eq!(layer.stats().ejections, 0, "a cold instance is not ejected");
    // Its timeout now follows the wait it showed: an answer after 300 ms
    // is waited for.
    let task = send(&mut service, get(&["a", "b"])).await;
    let (request, reply) = handle.next_request().await.unwrap();
    assert_eq!(target(&request).0, "a");
    tokio::time::sleep(Duration::from_millis(300)).await;
    reply.send_response(Response::new("from a"));
    assert_eq!(*task.await.unwrap().unwrap().body(), "from a");
    assert_eq!(layer.stats().timeouts, 5);
    drop(slow);
}

#[tokio::test(start_paused = true)]
async fn timeouts_on_a_warm_instance_eject_it() {
    let layer = HealthFailoverLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    handle.allow(100);
    let task = send(&mut service, get(&["a", "b"])).await;
    let (_, reply) = handle.next_request().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    reply.send_response(Response::new("from a"));
    task.await.unwrap().unwrap();
    // Now `a` hangs: its timed-out attempts are failures, and it is ejected
    // (two failures 100 ms apart with no success between).
    let mut hung = Vec::new();
    for _ in 0..2 {
        let task = send(&mut service, get(&["a", "b"])).await;
        let (request, reply) = handle.next_request().await.unwrap();
        assert_eq!(target(&request).0, "a");
        hung.push(reply);
        let (request, reply) = handle.next_request().await.unwrap();
        assert_eq!(target(&request).0, "b");
        reply.send_response(Response::new("from b"));
        task.await.unwrap().unwrap();
    }
    assert_eq!(layer.stats().timeouts, 2);
    assert_eq!(layer.stats().ejections, 1);
    drop(hung);
}

#[test]
fn setters_build_no_health_state_and_clones_share_the_one_built_first() {
    let layer = HealthFailoverLayer::new(topology())
        .with_consecutive_failures(2)
        .with_body_cap(1024)
        .with_ejection_backoff(Duration::from_millis(500), Duration::from_secs(1));
    assert!(
        layer.shared.get().is_none(),
        "a setter built the health state"
    );
    let clone = layer.clone();
    let _service = layer.layer(tower::service_fn(|_request: Request<Body>| async {
        Ok::<_, BoxError>(Response::new("ok"))
    }));
    let built = layer.shared.get().expect("built by the first service");
    assert!(std::sync::Arc::ptr_eq(built, clone.shared.get().unwrap()));
    // A setter on a configured layer starts afresh, and leaves the others'.
    let reconfigured = clone.with_body_cap(2048);
    assert!(reconfigured.shared.get().is_none());
    assert!(layer.shared.get().is_some());
}
