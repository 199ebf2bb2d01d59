//! The layer over a `tower-test` mock: copies, bounds, header stripping.

use std::time::Duration;

use bytes::Bytes;
use foresight_core::{
    ClientKey, HealthState, InstanceSpec, ROLE_HEADER, Ranked, Role, Route, RouteBody, Topology,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service as _, ServiceExt};
use tower_test::mock;

use crate::*;

type Body = RouteBody;
type Reply = Response<Full<Bytes>>;
type Handle = mock::Handle<Request<Body>, Reply>;
type Service = ShadowWrite<mock::Mock<Request<Body>, Reply>>;

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

fn get() -> Request<Full<Bytes>> {
    request(Method::GET, "", &["a", "b"])
}

fn ok() -> Reply {
    Response::new(Full::new(Bytes::from_static(b"ok")))
}

fn setup(layer: &ShadowWriteLayer) -> (Service, Handle) {
    let (mock, mut handle) = mock::pair();
    handle.allow(1000);
    (layer.layer(mock), handle)
}

/// Readies the layer for a request with a `Full` body (the layer takes any
/// body, so the type is named here).
async fn ready(service: &mut Service) -> &mut Service {
    ServiceExt::<Request<Full<Bytes>>>::ready(service)
        .await
        .unwrap()
}

fn route_of(request: &Request<Body>) -> (String, Role) {
    let route = request.extensions().get::<Route>().unwrap();
    (route.target.to_string(), route.role)
}

fn is_shadow(request: &Request<Body>) -> bool {
    route_of(request).1 == Role::Shadow
}

/// Lets spawned tasks run until `done` holds (bounded).
async fn settle(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("did not settle");
}

#[tokio::test]
async fn a_first_attempt_is_copied_to_the_secondary_marked_as_shadow() {
    let layer = ShadowWriteLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    let response = tokio::spawn(ready(&mut service).await.call(get()));
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (request, reply) = handle.next_request().await.unwrap();
        seen.push((
            route_of(&request),
            request.headers().get(&ROLE_HEADER).cloned(),
        ));
        reply.send_response(ok());
    }
    seen.sort_by(|a, b| a.0.0.cmp(&b.0.0));
    assert_eq!(seen[0], (("a".into(), Role::Primary), None));
    assert_eq!(
        seen[1],
        (("b".into(), Role::Shadow), Some("shadow".parse().unwrap()))
    );
    assert_eq!(response.await.unwrap().unwrap().status(), StatusCode::OK);
    settle(|| layer.stats().completed == 1).await;
    assert_eq!(layer.stats().sent, 1);
}

#[tokio::test(start_paused = true)]
async fn the_primary_never_waits_for_a_stalled_secondary() {
    let layer = ShadowWriteLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    let response = tokio::spawn(ready(&mut service).await.call(get()));
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let (request, reply) = handle.next_request().await.unwrap();
        if is_shadow(&request) {
            stalled.push(reply);
        } else {
            reply.send_response(ok());
        }
    }
    // The primary answered while the shadow hangs.
    assert_eq!(response.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(layer.in_flight(&"b".into()), Some(1));
    tokio::time::sleep(DEFAULT_TIMEOUT).await;
    settle(|| layer.stats().timed_out == 1).await;
    assert_eq!(layer.in_flight(&"b".into()), Some(0));
    drop(stalled);
}

#[tokio::test(start_paused = true)]
async fn beyond_the_in_flight_limit_shadows_are_dropped_and_counted() {
    let layer = ShadowWriteLayer::new(topology()).with_max_in_flight(2);
    let (mut service, mut handle) = setup(&layer);
    let mut stalled = Vec::new();
    for session in 0..5 {
        // Distinct sessions, so that no copy is coalesced with another.
        let mut request = get();
        let ranked: Ranked = ["a", "b"].iter().map(|&id| id.into()).collect();
        let key = ClientKey::from(format!("session-{session}").as_str());
        request
            .extensions_mut()
            .insert(Route::primary(key, ranked).unwrap());
        let response = tokio::spawn(ready(&mut service).await.call(request));
        loop {
            let (request, reply) = handle.next_request().await.unwrap();
            if is_shadow(&request) {
                stalled.push(reply);
            } else {
                reply.send_response(ok());
                break;
            }
        }
        response.await.unwrap().unwrap();
    }
    assert_eq!(stalled.len(), 2);
    let stats = layer.stats();
    assert_eq!((stats.sent, stats.dropped_full), (2, 3));
    assert_eq!(layer.in_flight(&"b".into()), Some(2));
    // The bound holds memory flat: after the timeout the permits are back.
    tokio::time::sleep(DEFAULT_TIMEOUT).await;
    settle(|| layer.in_flight(&"b".into()) == Some(0)).await;
    assert_eq!(layer.stats().timed_out, 2);
}

#[tokio::test]
async fn no_copy_goes_to_an_instance_that_is_not_healthy() {
    let topology = topology();
    let layer = ShadowWriteLayer::new(topology.clone());
    let (mut service, mut handle) = setup(&layer);
    topology
        .health(&"b".into())
        .unwrap()
        .set_state(HealthState::Degraded);
    // With a third candidate, the copy skips to it.
    let response = tokio::spawn(ready(&mut service).await.call(request(
        Method::GET,
        "",
        &["a", "b", "c"],
    )));
    let mut targets = Vec::new();
    for _ in 0..2 {
        let (request, reply) = handle.next_request().await.unwrap();
        targets.push(route_of(&request));
        reply.send_response(ok());
    }
    targets.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        targets,
        [("a".into(), Role::Primary), ("c".into(), Role::Shadow)]
    );
    response.await.unwrap().unwrap();
    // With only the unhealthy one, nothing is copied.
    let response = tokio::spawn(ready(&mut service).await.call(get()));
    let (request, reply) = handle.next_request().await.unwrap();
    assert!(!is_shadow(&request));
    reply.send_response(ok());
    response.await.unwrap().unwrap();
    assert_eq!(layer.stats().dropped_unhealthy, 1);
    assert_eq!(layer.stats().sent, 1);
}

#[tokio::test]
async fn a_forged_role_header_is_stripped_unless_the_hop_is_trusted() {
    let layer = ShadowWriteLayer::new(topology()).with_sampling(0.0);
    let (mut service, mut handle) = setup(&layer);
    let mut forged = get();
    forged
        .headers_mut()
        .insert(ROLE_HEADER.clone(), "shadow".parse().unwrap());
    let response = tokio::spawn(ready(&mut service).await.call(forged));
    let (request, reply) = handle.next_request().await.unwrap();
    assert!(request.headers().get(&ROLE_HEADER).is_none());
    reply.send_response(ok());
    response.await.unwrap().unwrap();
    assert_eq!(layer.stats().stripped, 1);

    let trusted = ShadowWriteLayer::new(topology()).with_trusted_hop(true);
    let (mut service, mut handle) = setup(&trusted);
    let mut marked = get();
    marked
        .headers_mut()
        .insert(ROLE_HEADER.clone(), "shadow".parse().unwrap());
    let response = tokio::spawn(ready(&mut service).await.call(marked));
    let (request, reply) = handle.next_request().await.unwrap();
    assert_eq!(request.headers()[&ROLE_HEADER], "shadow");
    reply.send_response(ok());
    response.await.unwrap().unwrap();
    // A shadow is never shadowed again.
    assert_eq!(trusted.stats().sent, 0);
}

#[tokio::test]
async fn replays_are_never_shadowed() {
    let layer = ShadowWriteLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    let mut replay = get();
    let route = replay.extensions_mut().get_mut::<Route>().unwrap();
    route.attempt = 1;
    let response = tokio::spawn(ready(&mut service).await.call(replay));
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_response(ok());
    response.await.unwrap().unwrap();
    assert_eq!(layer.stats().sent, 0);
}

#[tokio::test]
async fn a_body_is_copied_once_the_primary_has_read_it() {
    let layer = ShadowWriteLayer::new(topology())
        // POST: only to a shadow-aware secondary.
        .with_shadow_aware(["b"]);
    let (mut service, mut handle) = setup(&layer);
    let response = tokio::spawn(ready(&mut service).await.call(request(
        Method::POST,
        "payload",
        &["a", "b"],
    )));
    let (primary, reply) = handle.next_request().await.unwrap();
    assert!(!is_shadow(&primary));
    assert_eq!(
        primary.into_body().collect().await.unwrap().to_bytes(),
        "payload"
    );
    reply.send_response(ok());
    let (shadow, reply) = handle.next_request().await.unwrap();
    assert!(is_shadow(&shadow));
    assert_eq!(http_body::Body::size_hint(shadow.body()).exact(), Some(7));
    assert_eq!(
        shadow.into_body().collect().await.unwrap().to_bytes(),
        "payload"
    );
    reply.send_response(ok());
    response.await.unwrap().unwrap();
    settle(|| layer.stats().completed == 1).await;
}

/// Whether `handle` has a request waiting, once every other task has run
/// as far as it can.
async fn has_request(handle: &mut Handle) -> bool {
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    let mut next = std::pin::pin!(handle.next_request());
    std::future::poll_fn(|cx| std::task::Poll::Ready(next.as_mut().poll(cx).is_ready())).await
}

#[tokio::test]
async fn a_writes_copy_waits_for_the_primarys_answer_and_a_reads_does_not() {
    let layer = ShadowWriteLayer::new(topology()).with_shadow_aware(["b"]);
    let (mut service, mut handle) = setup(&layer);
    let response = tokio::spawn(ready(&mut service).await.call(request(
        Method::POST,
        "payload",
        &["a", "b"],
    )));
    let (primary, reply) = handle.next_request().await.unwrap();
    assert!(!is_shadow(&primary));
    primary.into_body().collect().await.unwrap();
    // The body is read, the primary has not answered: no copy yet.
    assert!(
        !has_request(&mut handle).await,
        "the write's copy went before the primary answered"
    );
    reply.send_response(ok());
    let (shadow, reply) = handle.next_request().await.unwrap();
    assert!(is_shadow(&shadow));
    reply.send_response(ok());
    response.await.unwrap().unwrap();
    settle(|| layer.stats().completed == 1).await;

    // A read's copy goes while the primary is still working.
    let response = tokio::spawn(ready(&mut service).await.call(get()));
    let (first, first_reply) = handle.next_request().await.unwrap();
    let (second, second_reply) = handle.next_request().await.unwrap();
    assert_ne!(is_shadow(&first), is_shadow(&second));
    first_reply.send_response(ok());
    second_reply.send_response(ok());
    response.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_body_over_the_cap_is_not_copied() {
    let layer = ShadowWriteLayer::new(topology())
        .with_body_cap(4)
        // POST: only to a shadow-aware secondary.
        .with_shadow_aware(["b"]);
    let (mut service, mut handle) = setup(&layer);
    let response = tokio::spawn(ready(&mut service).await.call(request(
        Method::POST,
        "payload",
        &["a", "b"],
    )));
    let (primary, reply) = handle.next_request().await.unwrap();
    assert_eq!(
        primary.into_body().collect().await.unwrap().to_bytes(),
        "payload"
    );
    reply.send_response(ok());
    response.await.unwrap().unwrap();
    assert_eq!(layer.stats().dropped_body, 1);
    assert_eq!(layer.stats().sent, 0);
}

#[tokio::test]
async fn a_client_that_goes_away_leaves_no_shadow_behind() {
    let layer = ShadowWriteLayer::new(topology())
        // POST: only to a shadow-aware secondary.
        .with_shadow_aware(["b"]);
    let (mut service, mut handle) = setup(&layer);
    let response = ready(&mut service)
        .await
        .call(request(Method::POST, "payload", &["a", "b"]));
    assert_eq!(layer.in_flight(&"b".into()), Some(1));
    // The client drops its request before the primary read the body.
    let (primary, _reply) = handle.next_request().await.unwrap();
    drop(primary);
    drop(response);
    settle(|| layer.in_flight(&"b".into()) == Some(0)).await;
    assert_eq!(layer.stats().dropped_body, 1);
}

#[tokio::test]
async fn sampling_zero_sends_nothing() {
    let layer = ShadowWriteLayer::new(topology()).with_sampling(0.0);
    let (mut service, mut handle) = setup(&layer);
    for _ in 0..10 {
        let response = tokio::spawn(ready(&mut service).await.call(get()));
        let (request, reply) = handle.next_request().await.unwrap();
        assert!(!is_shadow(&request));
        reply.send_response(ok());
        response.await.unwrap().unwrap();
    }
    assert_eq!(layer.stats(), ShadowStats::default());
}

#[tokio::test]
async fn status_mismatches_are_counted_when_comparing() {
    let layer = ShadowWriteLayer::new(topology()).with_comparison(true);
    let (mut service, mut handle) = setup(&layer);
    let response = tokio::spawn(ready(&mut service).await.call(get()));
    for _ in 0..2 {
        let (request, reply) = handle.next_request().await.unwrap();
        let mut answer = ok();
        if is_shadow(&request) {
            *answer.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        }
        reply.send_response(answer);
    }
    response.await.unwrap().unwrap();
    settle(|| layer.stats().completed == 1).await;
    assert_eq!(layer.stats().mismatches, 1);
}

#[tokio::test]
async fn readiness_is_the_inner_service_readiness() {
    let layer = ShadowWriteLayer::new(topology());
    let (mut service, mut handle) = mock::spawn_layer::<Request<Body>, Reply, _>(layer);
    handle.allow(0);
    assert!(service.poll_ready::<Request<Full<Bytes>>>().is_pending());
    handle.allow(1);
    assert!(service.poll_ready::<Request<Full<Bytes>>>().is_ready());
}

#[tokio::test]
async fn no_runtime_means_no_copy() {
    let layer = ShadowWriteLayer::new(topology());
    let (mock, mut handle) = mock::pair::<Request<Body>, Reply>();
    handle.allow(1);
    let mut service = layer.layer(mock);
    std::thread::spawn(move || {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let ready = tower::Service::<Request<Full<Bytes>>>::poll_ready(&mut service, &mut cx);
        assert!(ready.is_ready());
        drop(service.call(get()));
    })
    .join()
    .unwrap();
    assert_eq!(layer.stats().dropped_no_runtime, 1);
}

/// A body that hides its length, as some wrappers (a read timeout) do.
struct Hidden(Full<Bytes>);

impl http_body::Body for Hidden {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::pin::Pin::new(&mut self.0).poll_frame(cx)
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_of_declared_length_is_copied_when_its_reader_stops_at_the_last_byte() {
    let layer = ShadowWriteLayer::new(topology()).with_shadow_aware(["b"]);
    let (mock, mut handle) = mock::pair::<Request<RouteBody>, Reply>();
    handle.allow(10);
    let mut service = layer.layer(mock);
    let cases = [
        (Method::POST, Some("7"), "payload"),
        // HTTP/1 without content-length or transfer-encoding: no body.
        (Method::GET, None, ""),
    ];
    for (method, length, body) in cases {
        let mut request = request(method.clone(), body, &["a", "b"]).map(Hidden);
        if let Some(length) = length {
            request
                .headers_mut()
                .insert(http::header::CONTENT_LENGTH, length.parse().unwrap());
        }
        let ready = ServiceExt::<Request<Hidden>>::ready(&mut service);
        let response = tokio::spawn(ready.await.unwrap().call(request));
        let (primary, reply) = handle.next_request().await.unwrap();
        // The reader takes the declared bytes, never polls for the end,
        // and drops the body, as hyper's client does.
        let mut primary = primary.into_body();
        let mut read = Vec::new();
        while read.len() < body.len() {
            let frame = primary.frame().await.unwrap().unwrap();
            read.extend_from_slice(frame.data_ref().unwrap());
        }
        drop(primary);
        reply.send_response(ok());
        // Paused time: an abandoned copy fails this at once, not by a hang.
        let (shadow, reply) = tokio::time::timeout(Duration::from_secs(10), handle.next_request())
            .await
            .unwrap_or_else(|_| panic!("{method}: no shadow; {:?}", layer.stats()))
            .unwrap();
        let role = shadow.extensions().get::<Route>().unwrap().role;
        assert_eq!(role, Role::Shadow, "{method}");
        assert_eq!(
            shadow.into_body().collect().await.unwrap().to_bytes(),
            body,
            "{method}"
        );
        reply.send_response(ok());
        response.await.unwrap().unwrap();
    }
    settle(|| layer.stats().completed == 2).await;
    assert_eq!(layer.stats().dropped_body, 0);
}

mod policy;
