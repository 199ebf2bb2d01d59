use foresight_core::key::{HeaderKey, MissingKeyPolicy};
use foresight_core::{InstanceSpec, KeyError, ROLE_HEADER, Role, Route, Topology};
use http::{Request, Response};
use tower::{Layer, ServiceExt};
use tower_test::mock;

use crate::{ShardError, ShardLayer};

fn topology() -> Topology {
    Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap()
}

fn keyed(key: &str) -> Request<()> {
    Request::builder().header("x-key", key).body(()).unwrap()
}

#[tokio::test]
async fn stores_the_route_and_passes_the_request_on() {
    let layer = ShardLayer::new(topology(), HeaderKey::new("x-key")).with_replicas(3);
    let (service, mut handle) = mock::spawn_layer::<Request<()>, Response<()>, _>(layer.clone());
    let mut service = service;
    handle.allow(1);
    tokio_test::assert_ready_ok!(service.poll_ready());
    let response = service.call(keyed("user-1"));
    let (request, respond) = handle.next_request().await.unwrap();
    let route = request.extensions().get::<Route>().unwrap().clone();
    assert_eq!(route.role, Role::Primary);
    assert_eq!(route.ranked.len(), 3);
    assert_eq!(route.target, route.ranked[0]);
    assert_eq!(route.ranked, layer.topology().rank(&"user-1".into(), 0, 3));
    respond.send_response(Response::new(()));
    response.await.unwrap();
}

#[tokio::test]
async fn readiness_is_the_inner_services() {
    let layer = ShardLayer::new(topology(), HeaderKey::new("x-key"));
    let (mut service, mut handle) = mock::spawn_layer::<Request<()>, Response<()>, _>(layer);
    handle.allow(0);
    tokio_test::assert_pending!(service.poll_ready());
    handle.allow(1);
    tokio_test::assert_ready_ok!(service.poll_ready());
    let _response = service.call(keyed("k"));
    let (request, respond) = handle.next_request().await.unwrap();
    assert_eq!(request.headers()["x-key"], "k");
    respond.send_response(Response::new(()));
}

#[tokio::test]
async fn missing_and_malformed_keys_are_rejected_before_the_inner_service() {
    let layer = ShardLayer::new(topology(), HeaderKey::new("x-key"));
    let (mut service, mut handle) = mock::spawn_layer::<Request<()>, Response<()>, _>(layer);
    handle.allow(2);
    tokio_test::assert_ready_ok!(service.poll_ready());
    let error = service.call(Request::new(())).await.unwrap_err();
    assert!(matches!(
        error.downcast_ref::<ShardError>(),
        Some(ShardError::Key(KeyError::Missing { .. }))
    ));
    tokio_test::assert_ready_ok!(service.poll_ready());
    let error = service.call(keyed("")).await.unwrap_err();
    assert!(matches!(
        error.downcast_ref::<ShardError>(),
        Some(ShardError::Key(KeyError::Empty { .. }))
    ));
    // Nothing reached the inner service.
    handle.allow(1);
    tokio_test::assert_pending!(handle.poll_request());
}

#[tokio::test]
async fn spread_randomly_routes_keyless_requests() {
    let layer = ShardLayer::new(topology(), HeaderKey::new("x-key"))
        .with_missing_key(MissingKeyPolicy::SpreadRandomly);
    let service = layer.layer(tower::service_fn(|req: Request<()>| async move {
        Ok::<_, std::convert::Infallible>(Response::new(
            req.extensions().get::<Route>().unwrap().target.clone(),
        ))
    }));
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let response = service.clone().oneshot(Request::new(())).await.unwrap();
        seen.insert(response.into_body());
    }
    assert_eq!(seen.len(), 3, "random keys reach every instance");
}

#[tokio::test]
async fn an_empty_topology_is_unavailable() {
    let empty = Topology::from_instances([]).unwrap();
    let layer = ShardLayer::new(empty, HeaderKey::new("x-key"));
    let service = layer.layer(tower::service_fn(|_: Request<()>| async {
        Ok::<_, std::convert::Infallible>(Response::new(()))
    }));
    let error = service.oneshot(keyed("k")).await.unwrap_err();
    assert!(matches!(
        error.downcast_ref::<ShardError>(),
        Some(ShardError::NoInstances)
    ));
}

#[test]
fn seeds_change_the_mapping_and_routers_with_one_seed_agree() {
    let t = topology();
    let a = ShardLayer::new(t.clone(), HeaderKey::new("x-key")).with_seed(1);
    let b = ShardLayer::new(topology(), HeaderKey::new("x-key")).with_seed(1);
    let c = ShardLayer::new(t, HeaderKey::new("x-key")).with_seed(2);
    let route = |l: &ShardLayer<HeaderKey>, key: &str| {
        l.clone().layer(()).route(&keyed(key)).unwrap().ranked
    };
    let mut differs = 0;
    for i in 0..100 {
        let key = format!("user-{i}");
        assert_eq!(route(&a, &key), route(&b, &key));
        differs += usize::from(route(&a, &key) != route(&c, &key));
    }
    assert!(differs > 20);
}

#[tokio::test]
async fn routing_decisions_are_counted() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let layer = metrics::with_local_recorder(&recorder, || {
        ShardLayer::new(topology(), HeaderKey::new("x-key"))
    });
    let service = layer.layer(tower::service_fn(|_: Request<()>| async {
        Ok::<_, std::convert::Infallible>(Response::new(()))
    }));
    service.clone().oneshot(keyed("a")).await.unwrap();
    service.clone().oneshot(keyed("b")).await.unwrap();
    service.clone().oneshot(Request::new(())).await.unwrap_err();
    service.oneshot(keyed("")).await.unwrap_err();

    let counts: std::collections::HashMap<String, u64> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (_, key) = key.into_parts();
            let labels: Vec<String> = key.labels().map(|l| l.value().to_owned()).collect();
            let count = match value {
                DebugValue::Counter(c) => c,
                other => panic!("unexpected {other:?}"),
            };
            (format!("{}{:?}", key.name(), labels), count)
        })
        .collect();
    assert_eq!(counts["foresight_shard_routed_total[]"], 2);
    assert_eq!(counts["foresight_shard_rejected_total[\"no_key\"]"], 1);
    assert_eq!(
        counts["foresight_shard_rejected_total[\"malformed_key\"]"],
        1
    );
    assert_eq!(counts["foresight_shard_role_stripped_total[]"], 0);
}

/// A keyed request carrying the role header a client forged, in `values`.
fn forged(values: &[&'static str]) -> Request<()> {
    let mut request = keyed("mallory");
    for value in values {
        request
            .headers_mut()
            .append(&ROLE_HEADER, http::HeaderValue::from_static(value));
    }
    request
}

/// The role header values the inner service saw, one request per entry.
async fn seen_role_headers(
    layer: ShardLayer<HeaderKey>,
    requests: Vec<Request<()>>,
) -> Vec<Vec<String>> {
    let service = layer.layer(tower::service_fn(|request: Request<()>| async move {
        let seen: Vec<String> = request
            .headers()
            .get_all(&ROLE_HEADER)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        Ok::<_, std::convert::Infallible>(Response::new(seen))
    }));
    let mut seen = Vec::new();
    for request in requests {
        seen.push(service.clone().oneshot(request).await.unwrap().into_body());
    }
    seen
}

#[tokio::test]
async fn a_client_sent_role_header_never_reaches_the_inner_service() {
    let requests = vec![
        forged(&["shadow"]),
        forged(&["Shadow"]),
        forged(&["SHADOW"]),
        forged(&[" shadow "]),
        forged(&["primary", "shadow"]),
        forged(&["anything"]),
    ];
    let count = requests.len();
    let layer = ShardLayer::new(topology(), HeaderKey::new("x-key"));
    let seen = seen_role_headers(layer, requests).await;
    assert_eq!(seen, vec![Vec::<String>::new(); count]);
}

#[tokio::test]
async fn a_trusted_hop_keeps_the_role_header() {
    let layer = ShardLayer::new(topology(), HeaderKey::new("x-key")).with_trusted_hop(true);
    let seen = seen_role_headers(layer, vec![forged(&["Shadow"])]).await;
    assert_eq!(seen, vec![vec!["Shadow".to_owned()]]);
}

#[tokio::test]
async fn stripped_role_headers_are_counted() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let layer = metrics::with_local_recorder(&recorder, || {
        ShardLayer::new(topology(), HeaderKey::new("x-key"))
    });
    seen_role_headers(
        layer,
        vec![forged(&["shadow", "shadow"]), keyed("a"), forged(&["x"])],
    )
    .await;
    let stripped = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find_map(|(key, _, _, value)| {
            (key.key().name() == "foresight_shard_role_stripped_total").then_some(value)
        });
    assert!(
        matches!(stripped, Some(DebugValue::Counter(2))),
        "{stripped:?}"
    );
}

#[tokio::test]
async fn a_client_sent_attempt_header_never_reaches_the_inner_service() {
    use foresight_core::attempt::ATTEMPT_HEADER;
    let layer = ShardLayer::new(topology(), HeaderKey::new("x-key"));
    let service = layer.layer(tower::service_fn(|request: Request<()>| async move {
        let seen = request.headers().get_all(&ATTEMPT_HEADER).iter().count();
        Ok::<_, std::convert::Infallible>(Response::new(seen))
    }));
    let mut request = keyed("mallory");
    for value in ["00000000000000aa.0", "00000000000000aa.1"] {
        request
            .headers_mut()
            .append(&ATTEMPT_HEADER, http::HeaderValue::from_static(value));
    }
    assert_eq!(service.oneshot(request).await.unwrap().into_body(), 0);
}
