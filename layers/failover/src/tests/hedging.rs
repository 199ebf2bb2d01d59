//! Hedging over a `tower-test` mock, on a paused clock: a slow first
//! attempt races a second one on the next candidate.

use std::time::Duration;

use http::{Method, Response, StatusCode};

use super::*;

const TYPICAL: Duration = Duration::from_millis(10);

/// A layer that hedges past the p90 once 10 responses are known, with 10
/// responses of `a` at 10 ms behind it.
async fn warmed_up(layer: HealthFailoverLayer) -> (HealthFailoverLayer, Service, Handle) {
    let layer = layer.with_hedging(
        Hedging::after_quantile(0.9)
            .with_min_samples(10)
            .with_min_delay(Duration::from_millis(1)),
    );
    let (mut service, mut handle) = setup(&layer);
    handle.allow(100);
    for _ in 0..12 {
        let task = send(&mut service, get(&["a", "b", "c"])).await;
        let (_, reply) = handle.next_request().await.unwrap();
        tokio::time::sleep(TYPICAL).await;
        reply.send_response(Response::new("from a"));
        task.await.unwrap().unwrap();
    }
    // Past the hedge delay's refresh interval.
    tokio::time::sleep(Duration::from_millis(25)).await;
    assert_eq!(layer.stats().hedges, 0, "fast answers are never hedged");
    (layer, service, handle)
}

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_is_hedged_and_the_hedge_answers() {
    let (layer, mut service, mut handle) = warmed_up(HealthFailoverLayer::new(topology())).await;
    let task = send(&mut service, get(&["a", "b", "c"])).await;
    let (first, slow) = handle.next_request().await.unwrap();
    assert_eq!(target(&first), ("a".into(), Role::Primary, None));
    // Past a's p90 (10 ms, one bucket up at most), the hedge goes to b.
    let (second, reply) = handle.next_request().await.unwrap();
    assert_eq!(target(&second), ("b".into(), Role::Secondary, Some(1)));
    assert!(!task.is_finished());
    reply.send_response(Response::new("from b"));
    assert_eq!(*task.await.unwrap().unwrap().body(), "from b");
    let stats = layer.stats();
    assert_eq!((stats.hedges, stats.hedge_wins, stats.replays), (1, 1, 0));
    // The slow first attempt was cancelled, not counted as a failure.
    assert_eq!(layer.in_flight(&"a".into()), Some(0));
    assert_eq!(stats.ejections, 0);
    drop(slow);
}

#[tokio::test(start_paused = true)]
async fn the_first_attempt_still_wins_if_it_answers_first() {
    let (layer, mut service, mut handle) = warmed_up(HealthFailoverLayer::new(topology())).await;
    let task = send(&mut service, get(&["a", "b", "c"])).await;
    let (_, slow) = handle.next_request().await.unwrap();
    let (_, hedge) = handle.next_request().await.unwrap();
    slow.send_response(Response::new("from a, late"));
    assert_eq!(*task.await.unwrap().unwrap().body(), "from a, late");
    let stats = layer.stats();
    assert_eq!((stats.hedges, stats.hedge_wins), (1, 0));
    assert_eq!(
        layer.in_flight(&"b".into()),
        Some(0),
        "the hedge was cancelled"
    );
    drop(hedge);
}

#[tokio::test(start_paused = true)]
async fn when_the_first_attempt_fails_the_hedge_still_answers() {
    let (_layer, mut service, mut handle) = warmed_up(HealthFailoverLayer::new(topology())).await;
    let task = send(&mut service, get(&["a", "b", "c"])).await;
    let (_, slow) = handle.next_request().await.unwrap();
    let (_, hedge) = handle.next_request().await.unwrap();
    slow.send_error("connection reset");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(!task.is_finished(), "the failure waits for the hedge");
    hedge.send_response(Response::new("from b"));
    assert_eq!(*task.await.unwrap().unwrap().body(), "from b");
}

#[tokio::test(start_paused = true)]
async fn when_the_hedge_fails_the_first_attempt_still_answers() {
    let (_layer, mut service, mut handle) = warmed_up(HealthFailoverLayer::new(topology())).await;
    let task = send(&mut service, get(&["a", "b", "c"])).await;
    let (_, slow) = handle.next_request().await.unwrap();
    let (_, hedge) = handle.next_request().await.unwrap();
    let mut unavailable = Response::new("busy");
    *unavailable.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    hedge.send_response(unavailable);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(!task.is_finished());
    slow.send_response(Response::new("from a, late"));
    assert_eq!(*task.await.unwrap().unwrap().body(), "from a, late");
}

#[tokio::test(start_paused = true)]
async fn when_both_fail_the_request_is_replayed_on_the_third_candidate() {
    let (layer, mut service, mut handle) = warmed_up(HealthFailoverLayer::new(topology())).await;
    let task = send(&mut service, get(&["a", "b", "c"])).await;
    let (_, slow) = handle.next_request().await.unwrap();
    let (_, hedge) = handle.next_request().await.unwrap();
    hedge.send_error("refused");
    slow.send_error("reset");
    let (third, reply) = handle.next_request().await.unwrap();
    assert_eq!(target(&third), ("c".into(), Role::Secondary, Some(2)));
    reply.send_response(Response::new("from c"));
    assert_eq!(*task.await.unwrap().unwrap().body(), "from c");
    let stats = layer.stats();
    assert_eq!((stats.hedges, stats.replays), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn when_the_first_fails_then_the_hedge_the_request_is_replayed_on_the_third() {
    let (layer, mut service, mut handle) = warmed_up(HealthFailoverLayer::new(topology())).await;
    let task = send(&mut service, get(&["a", "b", "c"])).await;
    let (_, slow) = handle.next_request().await.unwrap();
    let (_, hedge) = handle.next_request().await.unwrap();
    slow.send_error("reset");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(!task.is_finished(), "the failure waits for the hedge");
    hedge.send_error("refused");
    let (third, reply) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .expect("no replay after both attempts failed")
        .unwrap();
    assert_eq!(target(&third), ("c".into(), Role::Secondary, Some(2)));
    reply.send_response(Response::new("from c"));
    assert_eq!(*task.await.unwrap().unwrap().body(), "from c");
    let stats = layer.stats();
    assert_eq!((stats.hedges, stats.replays, stats.hedge_wins), (1, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn requests_that_cannot_be_replayed_are_never_hedged() {
    let (layer, mut service, mut handle) = warmed_up(HealthFailoverLayer::new(topology())).await;
    let task = send(&mut service, request(Method::POST, "x", &["a", "b", "c"])).await;
    let (_, slow) = handle.next_request().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    slow.send_response(Response::new("late"));
    assert_eq!(*task.await.unwrap().unwrap().body(), "late");
    assert_eq!(layer.stats().hedges, 0);
}

#[tokio::test(start_paused = true)]
async fn hedges_spend_the_replay_budget() {
    let layer =
        HealthFailoverLayer::new(topology()).with_replay_budget(Duration::from_secs(1), 0, 0.0);
    let (layer, mut service, mut handle) = warmed_up(layer).await;
    let task = send(&mut service, get(&["a", "b", "c"])).await;
    let (_, slow) = handle.next_request().await.unwrap();
    // No budget, so no hedge; past the attempt timeout (100 ms floor) no
    // replay either: the attempt is waited for.
    tokio::time::sleep(Duration::from_millis(500)).await;
    slow.send_response(Response::new("late"));
    assert_eq!(*task.await.unwrap().unwrap().body(), "late");
    let stats = layer.stats();
    assert_eq!((stats.hedges, stats.replays), (0, 0));
    assert!(stats.budget_denied >= 2);
}

#[tokio::test(start_paused = true)]
async fn without_enough_samples_nothing_is_hedged() {
    let layer = HealthFailoverLayer::new(topology())
        .with_hedging(Hedging::after_quantile(0.9).with_min_samples(1_000));
    let (mut service, mut handle) = setup(&layer);
    handle.allow(10);
    let task = send(&mut service, get(&["a", "b"])).await;
    let (_, slow) = handle.next_request().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    slow.send_response(Response::new("from a"));
    task.await.unwrap().unwrap();
    assert_eq!(layer.stats().hedges, 0);
}

#[test]
fn out_of_range_settings_are_clamped() {
    assert_eq!(Hedging::after_quantile(f64::NAN).quantile, 0.95);
    assert_eq!(Hedging::after_quantile(-3.0).quantile, 0.5);
    assert_eq!(Hedging::after_quantile(7.0).quantile, 0.999);
    assert_eq!(Hedging::after_quantile(f64::INFINITY).quantile, 0.999);
    let hedging = Hedging::after_quantile(0.9)
        .with_min_samples(0)
        .with_window(Duration::ZERO);
    assert_eq!(hedging.min_samples, 1);
    assert_eq!(hedging.window, Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn every_attempt_carries_its_requests_id_and_its_own_number() {
    use foresight_core::attempt::Attempt as Tag;
    let (_layer, mut service, mut handle) = warmed_up(HealthFailoverLayer::new(topology())).await;
    let tag = |request: &http::Request<_>| Tag::of_headers(request.headers()).expect("tagged");
    let mut requests = Vec::new();
    for _ in 0..2 {
        let task = send(&mut service, get(&["a", "b", "c"])).await;
        let (first, slow) = handle.next_request().await.unwrap();
        let (second, reply) = handle.next_request().await.unwrap();
        let (t1, t2) = (tag(&first), tag(&second));
        assert_eq!((t1.number(), t2.number()), (0, 1));
        assert!(
            t1.same_request(&t2),
            "a hedge is an attempt of the same request"
        );
        requests.push(t1);
        reply.send_response(Response::new("from b"));
        task.await.unwrap().unwrap();
        drop(slow);
    }
    assert!(
        !requests[0].same_request(&requests[1]),
        "each request has its own id"
    );
}
