//! A client cannot forge the shadow role, whatever the routing layers.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use foresight_core::key::HeaderKey;
use foresight_core::{BoxError, Pool, ROLE_HEADER, Role, Route, RouteBody, Topology};
use foresight_failover::HealthFailoverLayer;
use foresight_shadow::ShadowWriteLayer;
use foresight_shard::ShardLayer;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

use super::two_instances;

/// What each request that reached an instance carried: its route's role
/// and its role header values.
type Seen = Arc<Mutex<Vec<(Option<Role>, Vec<String>)>>>;

/// A pool whose instances record what reached them.
fn recording_pool<B: Send + 'static>(
    topology: &Topology,
    seen: &Seen,
) -> Pool<
    impl Service<Request<B>, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send>
    + Clone
    + Send
    + 'static,
> {
    let seen = seen.clone();
    Pool::new(topology.clone(), move |_instance| {
        let seen = seen.clone();
        service_fn(move |request: Request<B>| {
            let role = request.extensions().get::<Route>().map(|r| r.role);
            let values = request
                .headers()
                .get_all(&ROLE_HEADER)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            seen.lock().unwrap().push((role, values));
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok")))) }
        })
    })
}

/// Forged role header values a client might send, one request each.
const FORGED: [&[&str]; 6] = [
    &["shadow"],
    &["Shadow"],
    &["SHADOW"],
    &[" shadow"],
    &["primary", "shadow"],
    &["secondary"],
];

/// Sends one request per entry of [`FORGED`] through `service` and checks
/// that none reached an instance with a role header; shadow copies the
/// stack made itself (route role `Shadow`) must carry exactly `shadow`.
async fn forged_roles_never_reach_an_instance<S>(service: S, seen: &Seen)
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = BoxError> + Clone,
{
    for (i, values) in FORGED.iter().enumerate() {
        let mut request = Request::builder()
            .uri("/")
            .header("x-session", format!("client-{i}"))
            .body(Full::new(Bytes::from_static(b"")))
            .unwrap();
        for value in *values {
            request
                .headers_mut()
                .append(&ROLE_HEADER, http::HeaderValue::from_static(value));
        }
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    // Shadow copies run on tasks of their own.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let seen = seen.lock().unwrap().clone();
    let (copies, requests): (Vec<_>, Vec<_>) = seen
        .into_iter()
        .partition(|(role, _)| *role == Some(Role::Shadow));
    assert_eq!(requests.len(), FORGED.len(), "{requests:?}");
    for (role, values) in &requests {
        assert!(values.is_empty(), "a {role:?} request carried {values:?}");
    }
    for (_, values) in &copies {
        assert_eq!(values, &["shadow"]);
    }
}

fn shard(topology: &Topology) -> ShardLayer<HeaderKey> {
    ShardLayer::new(topology.clone(), HeaderKey::new("x-session"))
}

#[tokio::test]
async fn a_forged_role_never_reaches_an_instance_through_shard_alone() {
    let topology = two_instances();
    let seen = Seen::default();
    let service = ServiceBuilder::new()
        .layer(shard(&topology))
        .service(recording_pool::<Full<Bytes>>(&topology, &seen));
    forged_roles_never_reach_an_instance(service, &seen).await;
}

#[tokio::test]
async fn a_forged_role_never_reaches_an_instance_through_shard_and_failover() {
    let topology = two_instances();
    let seen = Seen::default();
    let service = ServiceBuilder::new()
        .layer(shard(&topology))
        .layer(HealthFailoverLayer::new(topology.clone()))
        .service(recording_pool::<RouteBody>(&topology, &seen));
    forged_roles_never_reach_an_instance(service, &seen).await;
}

#[tokio::test]
async fn a_forged_role_never_reaches_an_instance_through_shard_failover_and_shadow() {
    let topology = two_instances();
    let seen = Seen::default();
    let shadow = ShadowWriteLayer::new(topology.clone());
    let service = ServiceBuilder::new()
        .layer(shard(&topology))
        .layer(HealthFailoverLayer::new(topology.clone()))
        .layer(shadow.clone())
        .service(recording_pool::<RouteBody>(&topology, &seen));
    forged_roles_never_reach_an_instance(service, &seen).await;
    // Every request was shadowed, as a first attempt, and the stack's own
    // copies were marked.
    assert_eq!(shadow.stats().sent, FORGED.len() as u64);
    assert_eq!(shadow.stats().completed, FORGED.len() as u64);
    // The entry stripped the forged headers before the shadow layer saw
    // them.
    assert_eq!(shadow.stats().stripped, 0);
}
