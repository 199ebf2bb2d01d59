//! The policy through the layer: writes only to shadow-aware instances,
//! reads coalesced per session, rules per method and path.

use std::time::Duration;

use super::*;

fn keyed(method: Method, key: &str, path: &str, body: &'static str) -> Request<Full<Bytes>> {
    let mut request = request(method, body, &["a", "b", "c"]);
    *request.uri_mut() = path.parse().unwrap();
    let ranked: Ranked = ["a", "b", "c"].iter().map(|&id| id.into()).collect();
    request
        .extensions_mut()
        .insert(Route::primary(ClientKey::from(key), ranked).unwrap());
    request
}

/// Sends `request` and answers it and each shadow it started, in whatever
/// order they reach the mock (a body is read before it is answered, as an
/// instance would); returns each one's target, role and body, by target.
async fn exchange(
    layer: &ShadowWriteLayer,
    service: &mut Service,
    handle: &mut Handle,
    request: Request<Full<Bytes>>,
) -> Vec<(String, Role, Bytes)> {
    let before = layer.stats().sent;
    // The layer decides and starts its copies within `call`.
    let response = tokio::spawn(ready(service).await.call(request));
    let copies = layer.stats().sent - before;
    let mut seen = Vec::new();
    for _ in 0..1 + copies {
        let (request, reply) = handle.next_request().await.unwrap();
        let (target, role) = route_of(&request);
        let body = request.into_body().collect().await.unwrap().to_bytes();
        seen.push((target, role, body));
        reply.send_response(ok());
    }
    response.await.unwrap().unwrap();
    settle(|| layer.stats().completed == layer.stats().sent).await;
    seen.sort_by(|x, y| x.0.cmp(&y.0));
    seen
}

fn primary(body: &'static str) -> (String, Role, Bytes) {
    (
        "a".into(),
        Role::Primary,
        Bytes::from_static(body.as_bytes()),
    )
}

fn shadow(to: &str, body: &'static str) -> (String, Role, Bytes) {
    (to.into(), Role::Shadow, Bytes::from_static(body.as_bytes()))
}

#[tokio::test]
async fn by_default_no_write_is_ever_copied() {
    let layer = ShadowWriteLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    let writes = ["POST", "PATCH", "PUT", "DELETE", "PURGE"];
    for method in writes {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let seen = exchange(
            &layer,
            &mut service,
            &mut handle,
            keyed(method, "k", "/", "w"),
        )
        .await;
        assert_eq!(seen, [primary("w")]);
    }
    assert_eq!(layer.stats().sent, 0);
    assert_eq!(layer.stats().skipped_by_policy, writes.len() as u64);
}

#[tokio::test]
async fn a_write_is_copied_to_a_shadow_aware_secondary_and_to_no_other() {
    let topology = topology();
    let layer = ShadowWriteLayer::new(topology.clone()).with_shadow_aware(["b"]);
    let (mut service, mut handle) = setup(&layer);
    for body in ["", "payload"] {
        let request = keyed(Method::POST, "k", "/", body);
        let seen = exchange(&layer, &mut service, &mut handle, request).await;
        assert_eq!(seen, [primary(body), shadow("b", body)]);
    }
    // Writes are not coalesced: each one reached b.
    assert_eq!(layer.stats().sent, 2);

    // With b out, the next candidate c is not shadow-aware: the write stays
    // on its primary, while a read still warms c.
    topology
        .health(&"b".into())
        .unwrap()
        .set_state(HealthState::Degraded);
    let request = keyed(Method::POST, "k", "/", "w");
    let seen = exchange(&layer, &mut service, &mut handle, request).await;
    assert_eq!(seen, [primary("w")]);
    assert_eq!(layer.stats().skipped_by_policy, 1);
    let request = keyed(Method::GET, "k", "/", "");
    let seen = exchange(&layer, &mut service, &mut handle, request).await;
    assert_eq!(seen, [primary(""), shadow("c", "")]);
}

#[tokio::test]
async fn no_rule_sends_a_write_to_an_instance_that_is_not_shadow_aware() {
    let policy = ShadowPolicy::new()
        .with_shadow_aware(["c"])
        .with_rule(ShadowRule::shadow().with_methods([Method::POST]));
    let layer = ShadowWriteLayer::new(topology()).with_policy(policy);
    let (mut service, mut handle) = setup(&layer);
    let seen = exchange(
        &layer,
        &mut service,
        &mut handle,
        keyed(Method::POST, "k", "/", "w"),
    )
    .await;
    assert_eq!(seen, [primary("w")]);
    assert_eq!(layer.stats().skipped_by_policy, 1);
    assert_eq!(layer.stats().sent, 0);
}

#[tokio::test(start_paused = true)]
async fn reads_of_one_session_are_copied_once_per_interval() {
    let layer = ShadowWriteLayer::new(topology());
    let (mut service, mut handle) = setup(&layer);
    let get = |key| keyed(Method::GET, key, "/", "");
    let seen = exchange(&layer, &mut service, &mut handle, get("s1")).await;
    assert_eq!(seen, [primary(""), shadow("b", "")]);
    // Nine more reads over 27 s, and one at 30 s less 1 ms: all within the
    // interval.
    for step in [Duration::from_secs(3); 9]
        .into_iter()
        .chain([Duration::from_secs(3) - Duration::from_millis(1)])
    {
        tokio::time::advance(step).await;
        let seen = exchange(&layer, &mut service, &mut handle, get("s1")).await;
        assert_eq!(seen, [primary("")]);
    }
    // Another session is warmed on its own.
    let seen = exchange(&layer, &mut service, &mut handle, get("s2")).await;
    assert_eq!(seen, [primary(""), shadow("b", "")]);
    assert_eq!((layer.stats().sent, layer.stats().coalesced), (2, 10));
    // At 30 s the interval is over: one more copy.
    tokio::time::advance(Duration::from_millis(1)).await;
    let seen = exchange(&layer, &mut service, &mut handle, get("s1")).await;
    assert_eq!(seen, [primary(""), shadow("b", "")]);
    assert_eq!((layer.stats().sent, layer.stats().coalesced), (3, 10));
}

#[tokio::test(start_paused = true)]
async fn rules_skip_sample_and_coalesce_per_method_and_path() {
    let policy = ShadowPolicy::new()
        .with_rule(ShadowRule::skip().with_path_prefix("/assets").unwrap())
        .with_rule(
            ShadowRule::shadow()
                .with_path_prefix("/quiet")
                .unwrap()
                .with_sample(0.0)
                .unwrap(),
        )
        .with_rule(
            ShadowRule::shadow()
                .with_methods([Method::GET])
                .with_path_prefix("/live")
                .unwrap()
                .with_coalesce(Duration::ZERO),
        );
    let layer = ShadowWriteLayer::new(topology()).with_policy(policy);
    let (mut service, mut handle) = setup(&layer);
    let mut send = async |path| {
        let request = keyed(Method::GET, "s", path, "");
        exchange(&layer, &mut service, &mut handle, request)
            .await
            .len()
    };
    assert_eq!(send("/assets/app.js").await, 1);
    assert_eq!(layer.stats().skipped_by_policy, 1);
    assert_eq!(send("/quiet").await, 1);
    // Not coalesced: every read of /live is copied.
    for _ in 0..3 {
        assert_eq!(send("/live/feed").await, 2);
    }
    // The default for other paths: one copy per interval.
    assert_eq!(send("/other").await, 2);
    assert_eq!(send("/other").await, 1);
    let stats = layer.stats();
    assert_eq!(
        (stats.sent, stats.coalesced, stats.skipped_by_policy),
        (4, 1, 1)
    );
}
