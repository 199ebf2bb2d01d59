use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response};
use tower::ServiceExt;
use tower_service::Service;
use tower_test::mock;

use super::*;
use crate::{ClientKey, InstanceId, InstanceSpec, Ranked, Route, ServedBy, Topology};

type Mock = mock::Mock<Request<&'static str>, Response<&'static str>>;
type Handle = mock::Handle<Request<&'static str>, Response<&'static str>>;

fn mocks(names: &[&str]) -> (Topology, Pool<Mock>, HashMap<String, Handle>) {
    let topology = Topology::from_instances(names.iter().map(|n| InstanceSpec::new(*n))).unwrap();
    let mut services = HashMap::new();
    let mut handles = HashMap::new();
    for name in names {
        let (service, handle) = mock::pair();
        services.insert(name.to_string(), service);
        handles.insert(name.to_string(), handle);
    }
    let pool = Pool::new(topology.clone(), move |i| services[i.id().as_str()].clone());
    (topology, pool, handles)
}

fn routed(target: &str) -> Request<&'static str> {
    let mut request = Request::new("body");
    let mut ranked = Ranked::new();
    ranked.push(InstanceId::from(target));
    request
        .extensions_mut()
        .insert(Route::primary(ClientKey::from("k"), ranked).unwrap());
    request
}

#[tokio::test]
async fn dispatches_to_the_target_and_records_it() {
    let (_, pool, mut handles) = mocks(&["a", "b"]);
    let pool = pool.with_instance_header(true);
    handles.get_mut("b").unwrap().allow(1);
    let call = tokio::spawn(pool.oneshot(routed("b")));
    let (request, respond) = handles.get_mut("b").unwrap().next_request().await.unwrap();
    assert_eq!(*request.body(), "body");
    respond.send_response(Response::new("from b"));
    let response = call.await.unwrap().unwrap();
    assert_eq!(*response.body(), "from b");
    assert_eq!(
        response.extensions().get::<ServedBy>(),
        Some(&ServedBy("b".into()))
    );
    assert_eq!(response.headers()["x-foresight-instance"], "b");
}

#[tokio::test]
async fn requests_without_a_route_or_with_an_unknown_target_fail_typed() {
    let (_, pool, _handles) = mocks(&["a"]);
    let error = pool.clone().oneshot(Request::new("x")).await.unwrap_err();
    assert!(matches!(
        error.downcast_ref::<PoolError>(),
        Some(PoolError::NoRoute)
    ));
    let error = pool.oneshot(routed("zz")).await.unwrap_err();
    assert!(matches!(
        error.downcast_ref::<PoolError>(),
        Some(PoolError::UnknownTarget(id)) if id.as_str() == "zz"
    ));
}

#[tokio::test(start_paused = true)]
async fn a_busy_instance_does_not_block_the_others_and_times_out() {
    let (_, pool, mut handles) = mocks(&["slow", "fast"]);
    let mut pool = pool.with_ready_timeout(Duration::from_millis(250));
    handles.get_mut("slow").unwrap().allow(0);
    handles.get_mut("fast").unwrap().allow(1);

    // The pool itself is always ready: routing cannot know the target yet.
    std::future::poll_fn(|cx| pool.poll_ready(cx))
        .await
        .unwrap();
    let stuck = tokio::spawn(pool.clone().oneshot(routed("slow")));
    let quick = tokio::spawn(pool.clone().oneshot(routed("fast")));
    let (_, respond) = handles
        .get_mut("fast")
        .unwrap()
        .next_request()
        .await
        .unwrap();
    respond.send_response(Response::new("ok"));
    assert_eq!(*quick.await.unwrap().unwrap().body(), "ok");

    tokio::time::advance(Duration::from_millis(251)).await;
    let error = stuck.await.unwrap().unwrap_err();
    match error.downcast_ref::<PoolError>() {
        Some(PoolError::NotReady { instance, waited }) => {
            assert_eq!(instance.as_str(), "slow");
            assert_eq!(*waited, Duration::from_millis(250));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn dropping_a_waiting_future_sends_nothing_and_frees_the_slot() {
    let (_, pool, mut handles) = mocks(&["a"]);
    let handle = handles.get_mut("a").unwrap();
    handle.allow(0);
    let mut future = Box::pin(pool.clone().oneshot(routed("a")));
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx))).await;
    assert!(first.is_pending());
    drop(future);
    // The capacity granted now is used by the next request, not the dropped one.
    handle.allow(1);
    let next = tokio::spawn(pool.oneshot(routed("a")));
    let (request, respond) = handle.next_request().await.unwrap();
    assert_eq!(*request.body(), "body");
    respond.send_response(Response::new("second"));
    assert_eq!(*next.await.unwrap().unwrap().body(), "second");
}

#[tokio::test]
async fn instance_errors_pass_through() {
    let (_, pool, mut handles) = mocks(&["a"]);
    handles.get_mut("a").unwrap().allow(1);
    let call = tokio::spawn(pool.oneshot(routed("a")));
    let (_, respond) = handles.get_mut("a").unwrap().next_request().await.unwrap();
    respond.send_error("connection reset");
    let error = call.await.unwrap().unwrap_err();
    assert_eq!(error.to_string(), "connection reset");
}

#[tokio::test]
async fn follows_membership_changes() {
    let topology = Topology::from_instances([InstanceSpec::new("a")]).unwrap();
    let built = Arc::new(AtomicUsize::new(0));
    let counter = built.clone();
    let pool = Pool::new(topology.clone(), move |i| {
        counter.fetch_add(1, Ordering::SeqCst);
        let name = i.id().to_string();
        tower::service_fn(move |_: Request<&'static str>| {
            let name = name.clone();
            async move { Ok::<_, std::convert::Infallible>(Response::new(name)) }
        })
    });
    assert_eq!(built.load(Ordering::SeqCst), 1);
    topology.insert(InstanceSpec::new("b")).unwrap();
    let response = pool.clone().oneshot(routed("b")).await.unwrap();
    assert_eq!(response.body(), "b");
    // "a" kept its service: only "b" was built.
    assert_eq!(built.load(Ordering::SeqCst), 2);
    topology.remove(&"a".into());
    let error = pool.oneshot(routed("a")).await.unwrap_err();
    assert!(matches!(
        error.downcast_ref::<PoolError>(),
        Some(PoolError::UnknownTarget(_))
    ));
}

#[tokio::test]
async fn requests_count_in_their_instance_in_flight_until_answered_or_dropped() {
    let (topology, pool, mut handles) = mocks(&["a", "b"]);
    let in_flight = |id: &str| topology.health(&id.into()).unwrap().in_flight();
    let handle = handles.get_mut("a").unwrap();
    handle.allow(2);
    let answered = tokio::spawn(pool.clone().oneshot(routed("a")));
    let mut dropped = Box::pin(pool.clone().oneshot(routed("a")));
    let _ = std::future::poll_fn(|cx| std::task::Poll::Ready(dropped.as_mut().poll(cx))).await;
    let (_, first) = handle.next_request().await.unwrap();
    let (_, second) = handle.next_request().await.unwrap();
    assert_eq!((in_flight("a"), in_flight("b")), (2, 0));
    drop(dropped);
    assert_eq!(in_flight("a"), 1);
    // Which of the two requests was the dropped one does not matter.
    first.send_response(Response::new("done"));
    second.send_response(Response::new("done"));
    answered.await.unwrap().unwrap();
    assert_eq!(in_flight("a"), 0);
}
